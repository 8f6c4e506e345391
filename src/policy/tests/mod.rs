//! Unit tests of the policy engine, without a token.

mod compile_tests;
mod creation_key_types_tests;
mod creation_tests;
mod evaluate_callers_tests;
mod evaluate_tests;
mod handle_tests;
mod lint_tests;

use std::sync::Arc;

use super::*;

/// 2024-01-01T00:00:00Z, a Monday.
pub const MONDAY: i64 = 1_704_067_200;

pub fn clock_at(unix: i64) -> Arc<ManualClock> {
    Arc::new(ManualClock::at(unix))
}

/// Compiles `text` with a manual clock at Monday 10:00 UTC.
pub fn compile(text: &str) -> Policy {
    compile_with(text, clock_at(MONDAY + 10 * 3600))
}

pub fn compile_with(text: &str, clock: Arc<ManualClock>) -> Policy {
    match Policy::compile(text, "test.toml", clock) {
        Ok(p) => p,
        Err(e) => panic!("policy does not compile: {e}"),
    }
}

pub fn compile_err(text: &str) -> String {
    match Policy::compile(text, "test.toml", clock_at(MONDAY)) {
        Ok(_) => panic!("policy compiled but should not"),
        Err(e) => e.to_string(),
    }
}

pub fn user(name: &str) -> Principal {
    Principal {
        uid: Some(1000),
        user: Some(name.into()),
        gids: vec![1000],
        groups: vec![name.into()],
        exe: Some("/usr/bin/app".into()),
        host: Some("host1".into()),
        login: Login::User,
        identity: None,
    }
}

pub fn key(label: &str, class: pkcs11_sys::CK_OBJECT_CLASS) -> KeyFacts {
    KeyFacts {
        class: Some(class),
        key_type: Some(pkcs11_sys::CKK_EC),
        label: Some(label.into()),
        ..KeyFacts::default()
    }
}

pub fn decide(
    p: &Policy,
    who: &Principal,
    op: Op,
    k: Option<&KeyFacts>,
    mech: Option<pkcs11_sys::CK_MECHANISM_TYPE>,
) -> Decision {
    let s = p.resolve(who);
    p.decide(&Request {
        subject: &s,
        op,
        key: k,
        mechanism: mech,
    })
}
