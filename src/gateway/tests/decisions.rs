//! Decisions: a refusal, an allow, and the backend's own error, each with its
//! record.

use pkcs11_sys::*;

use super::{rv, Env};
use crate::audit::Decision;
use crate::backend::double::signature;
use crate::functions::FunctionId as F;

#[test]
fn a_refused_sign_init_never_reaches_the_backend_and_is_recorded_with_its_rule() {
    let env = Env::enforce();
    let key = env.double.add_signing_key("other", b"o1");
    let s = env.user_session();
    let r = env.sign_init(s, CKM_ECDSA, key);
    assert_eq!(rv(r), CKR_KEY_FUNCTION_NOT_PERMITTED);
    // The key never reached the token. The one C_SignInit it saw is the gateway's
    // probe for a missing function (`unsupported.rs`), with no key.
    assert_eq!(env.double.key_uses(key), 0);
    assert_eq!(env.double.key_uses(CK_INVALID_HANDLE), 1);
    assert_eq!(env.double.calls(F::C_SignInit), 1);
    let ops = env.ops();
    let refused: Vec<_> = ops
        .iter()
        .filter(|r| r.function.as_deref() == Some("C_SignInit"))
        .collect();
    assert_eq!(refused.len(), 1, "{ops:?}");
    let r = refused[0];
    assert_eq!(r.decision, Some(Decision::Deny));
    assert_eq!(r.rule.as_deref(), Some("default-deny"));
    assert_eq!(r.rv.as_deref(), Some("CKR_KEY_FUNCTION_NOT_PERMITTED"));
    assert_eq!(r.key_label.as_deref(), Some("other"));
}

#[test]
fn a_mechanism_the_rule_does_not_name_is_refused_too() {
    let env = Env::enforce();
    let key = env.double.add_signing_key("ok-1", b"k1");
    let s = env.user_session();
    assert_eq!(
        rv(env.sign_init(s, CKM_ECDSA_SHA256, key)),
        CKR_MECHANISM_INVALID
    );
    assert_eq!(env.double.key_uses(key), 0);
}

#[test]
fn an_allowed_sign_is_forwarded_once_and_recorded_with_its_key() {
    let env = Env::enforce();
    let key = env.double.add_signing_key("ok-1", b"k1");
    let s = env.user_session();
    env.sign_init(s, CKM_ECDSA, key).unwrap();
    // Forwarded once (after the gateway's probe with no key, `unsupported.rs`).
    assert_eq!(env.double.key_uses(key), 1);
    assert_eq!(env.double.calls(F::C_SignInit), 2);
    let mut sig = [0u8; 64];
    let (r, len) = env.sign(s, &[7; 32], Some(&mut sig));
    r.unwrap();
    assert_eq!(len, 64);
    assert_eq!(sig.to_vec(), signature(b"k1", &[7; 32]));
    assert_eq!(env.double.calls(F::C_Sign), 1);
    let ops = env.ops();
    let signs: Vec<_> = ops
        .iter()
        .filter(|r| r.function.as_deref() == Some("C_Sign"))
        .collect();
    assert_eq!(signs.len(), 1, "{ops:?}");
    let r = signs[0];
    assert_eq!(r.decision, Some(Decision::Allow));
    assert_eq!(r.rv.as_deref(), Some("CKR_OK"));
    assert_eq!(r.key_label.as_deref(), Some("ok-1"));
    assert_eq!((r.bytes_in, r.bytes_out), (Some(32), Some(64)));
    assert_eq!(
        r.token.as_deref(),
        Some(crate::backend::double::TOKEN_SERIAL)
    );
    // No record of the *Init on its own: the operation's record is the one.
    assert!(!ops
        .iter()
        .any(|r| r.function.as_deref() == Some("C_SignInit")));
}

#[test]
fn a_backend_error_comes_back_unchanged_and_is_recorded() {
    let env = Env::transparent();
    let key = env.double.add_signing_key("any", b"a1");
    let s = env.user_session();
    env.double.fail_next(F::C_SignInit, CKR_DEVICE_ERROR);
    assert_eq!(rv(env.sign_init(s, CKM_ECDSA, key)), CKR_DEVICE_ERROR);
    assert_eq!(env.double.calls(F::C_SignInit), 1);
    // A failed *Init is one record, at once, with the token's code.
    let ops = env.ops();
    let failed: Vec<_> = ops
        .iter()
        .filter(|r| r.function.as_deref() == Some("C_SignInit"))
        .collect();
    assert_eq!(failed.len(), 1, "{ops:?}");
    assert_eq!(failed[0].rv.as_deref(), Some("CKR_DEVICE_ERROR"));
    assert_eq!(failed[0].decision, Some(Decision::Allow));
    assert_eq!(failed[0].key_label.as_deref(), Some("any"));

    // A data call's error ends its operation, and its record says so.
    env.sign_init(s, CKM_ECDSA, key).unwrap();
    env.double.fail_next(F::C_Sign, CKR_DATA_LEN_RANGE);
    let mut sig = [0u8; 64];
    assert_eq!(
        rv(env.sign(s, &[1; 32], Some(&mut sig)).0),
        CKR_DATA_LEN_RANGE
    );
    let ops = env.ops();
    let last = ops.last().unwrap();
    assert_eq!(last.function.as_deref(), Some("C_Sign"));
    assert_eq!(last.rv.as_deref(), Some("CKR_DATA_LEN_RANGE"));
    assert!(!env.double.has_operation(s, crate::functions::OpKind::Sign));
}

#[test]
fn a_wrong_pin_is_the_tokens_answer_and_recorded() {
    let env = Env::transparent();
    let mut s = CK_INVALID_HANDLE;
    let notify = crate::backend::Notify {
        application: std::ptr::null_mut(),
        callback: None,
    };
    env.gw
        .open_session(
            super::Call::slot(F::C_OpenSession, crate::backend::double::SLOT),
            &mut s,
            |b, s| b.open_session(crate::backend::double::SLOT, CKF_SERIAL_SESSION, notify, s),
        )
        .unwrap();
    let r = env.gw.login(
        super::Call::session(F::C_Login, s),
        CKU_USER,
        Some(b"wrong"),
        |b, pin| b.login(s, CKU_USER, pin),
    );
    assert_eq!(rv(r), CKR_PIN_INCORRECT);
    let ops = env.ops();
    let login = ops.last().unwrap();
    assert_eq!(login.function.as_deref(), Some("C_Login"));
    assert_eq!(login.rv.as_deref(), Some("CKR_PIN_INCORRECT"));
}
