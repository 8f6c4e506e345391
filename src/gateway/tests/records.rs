//! Records of operations: a §5.2 size query and a short buffer write none, the
//! real call one; an operation still under way when its session closes ends there.

use pkcs11_sys::*;

use super::{rv, Env};
use crate::functions::{FunctionId as F, OpKind};

fn named<'a>(
    ops: &'a [crate::audit::RecordView],
    function: &str,
) -> Vec<&'a crate::audit::RecordView> {
    ops.iter()
        .filter(|r| r.function.as_deref() == Some(function))
        .collect()
}

#[test]
fn a_size_query_and_a_short_buffer_write_no_record_and_the_real_call_one() {
    let env = Env::transparent();
    let key = env.double.add_signing_key("k", b"k1");
    let s = env.user_session();
    env.sign_init(s, CKM_ECDSA, key).unwrap();

    // NULL buffer: the length, CKR_OK, the operation still active.
    let (r, len) = env.sign(s, &[3; 20], None);
    r.unwrap();
    assert_eq!(len, 64);
    assert!(env.double.has_operation(s, OpKind::Sign));
    // Too small: CKR_BUFFER_TOO_SMALL with the length, still active.
    let mut short = [0u8; 10];
    let (r, len) = env.sign(s, &[3; 20], Some(&mut short));
    assert_eq!(rv(r), CKR_BUFFER_TOO_SMALL);
    assert_eq!(len, 64);
    assert!(env.double.has_operation(s, OpKind::Sign));
    assert!(named(&env.ops(), "C_Sign").is_empty(), "{:?}", env.ops());

    let mut sig = [0u8; 80];
    let (r, len) = env.sign(s, &[3; 20], Some(&mut sig));
    r.unwrap();
    assert_eq!(len, 64);
    assert!(!env.double.has_operation(s, OpKind::Sign));
    assert_eq!(env.double.calls(F::C_Sign), 3);
    let ops = env.ops();
    let signs = named(&ops, "C_Sign");
    assert_eq!(signs.len(), 1, "{ops:?}");
    assert_eq!(signs[0].rv.as_deref(), Some("CKR_OK"));
    assert_eq!(
        (signs[0].bytes_in, signs[0].bytes_out),
        (Some(20), Some(64))
    );
    assert_eq!(signs[0].key_label.as_deref(), Some("k"));
}

#[test]
fn an_operation_under_way_ends_with_its_session_and_is_recorded_so() {
    let env = Env::transparent();
    let key = env.double.add_signing_key("k", b"k1");
    let s = env.user_session();
    env.sign_init(s, CKM_ECDSA, key).unwrap();
    assert!(named(&env.ops(), "C_SignInit").is_empty());
    env.close(s).unwrap();
    let ops = env.ops();
    let closes = named(&ops, "C_CloseSession");
    assert_eq!(closes.len(), 2, "{ops:?}");
    assert_eq!(closes[0].rv.as_deref(), Some("CKR_OK"));
    assert!(closes[0].key_label.is_none());
    // The operation's record ends with the session.
    assert_eq!(closes[1].rv.as_deref(), Some("CKR_SESSION_CLOSED"));
    assert_eq!(closes[1].key_label.as_deref(), Some("k"));
    assert_eq!(
        (closes[1].bytes_in, closes[1].bytes_out),
        (Some(0), Some(0))
    );
}

#[test]
fn a_failed_close_ends_nothing() {
    let env = Env::transparent();
    let key = env.double.add_signing_key("k", b"k1");
    let s = env.user_session();
    env.sign_init(s, CKM_ECDSA, key).unwrap();
    env.double.fail_next(F::C_CloseSession, CKR_DEVICE_ERROR);
    assert_eq!(rv(env.close(s)), CKR_DEVICE_ERROR);
    let ops = env.ops();
    let closes = named(&ops, "C_CloseSession");
    assert_eq!(closes.len(), 1, "{ops:?}");
    assert_eq!(closes[0].rv.as_deref(), Some("CKR_DEVICE_ERROR"));
    // Still under way: the real call ends it.
    let mut sig = [0u8; 64];
    env.sign(s, &[1; 8], Some(&mut sig)).0.unwrap();
    assert_eq!(named(&env.ops(), "C_Sign").len(), 1);
}

#[test]
fn the_trail_records_start_and_stop_around_the_calls() {
    let env = Env::transparent();
    env.gw.stop().unwrap();
    let mut kinds = Vec::new();
    crate::audit::read_records(
        &env.dir.path().join("audit"),
        &crate::audit::Filter::default(),
        |f| {
            kinds.push((f.view.kind.clone(), f.view.what.clone()));
            true
        },
    )
    .unwrap();
    assert!(
        kinds.contains(&(Some("module".into()), Some("start".into()))),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(Some("module".into()), Some("stop".into()))),
        "{kinds:?}"
    );
    assert_eq!(env.double.calls(F::C_Finalize), 1);
}
