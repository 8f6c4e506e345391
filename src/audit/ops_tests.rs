use std::time::{Duration, Instant};

use pkcs11_sys::*;

use super::*;
use crate::audit::record::Decision;

fn template(f: FunctionId) -> OpEvent {
    let mut e = OpEvent::new(f, CKR_OK).with_mechanism_type(CKM_ECDSA);
    e.session = Some(5);
    e.slot = Some(1);
    e
}

#[test]
fn single_part_sign_is_one_record_after_a_size_query() {
    let t = OpTracker::new();
    let started = Instant::now() - Duration::from_millis(3);
    assert!(t
        .begin(5, OpKind::Sign, template(FunctionId::C_SignInit), started)
        .is_none());
    // Size query, then too small, then the real call.
    assert!(t
        .data(5, FunctionId::C_Sign, CKR_OK, 32, 64, true)
        .is_empty());
    assert!(t
        .data(5, FunctionId::C_Sign, CKR_BUFFER_TOO_SMALL, 32, 0, false)
        .is_empty());
    let done: Vec<OpEvent> = t
        .data(5, FunctionId::C_Sign, CKR_OK, 32, 64, false)
        .into_iter()
        .collect();
    assert_eq!(done.len(), 1);
    let e = &done[0];
    assert_eq!(e.function, FunctionId::C_Sign);
    assert_eq!((e.bytes_in, e.bytes_out, e.rv), (32, 64, Rv(CKR_OK)));
    assert!(e.duration_us >= 3000, "{}", e.duration_us);
    assert_eq!(
        e.mechanism.as_ref().map(ToString::to_string).as_deref(),
        Some("CKM_ECDSA")
    );
    assert_eq!(e.decision, Decision::Allow);
    assert_eq!(t.in_flight(), 0);
}

#[test]
fn multi_part_operations_add_up_and_end_at_final() {
    let t = OpTracker::new();
    t.begin(
        5,
        OpKind::Encrypt,
        template(FunctionId::C_EncryptInit),
        Instant::now(),
    );
    for _ in 0..3 {
        assert!(t
            .data(5, FunctionId::C_EncryptUpdate, CKR_OK, 1024, 1024, false)
            .is_empty());
    }
    let done: Vec<OpEvent> = t
        .data(5, FunctionId::C_EncryptFinal, CKR_OK, 0, 16, false)
        .into_iter()
        .collect();
    assert_eq!((done[0].bytes_in, done[0].bytes_out), (3072, 3088));
    assert_eq!(done[0].function, FunctionId::C_EncryptFinal);
}

#[test]
fn a_failing_update_ends_the_operation_with_its_code() {
    let t = OpTracker::new();
    t.begin(
        5,
        OpKind::Decrypt,
        template(FunctionId::C_DecryptInit),
        Instant::now(),
    );
    let done: Vec<OpEvent> = t
        .data(
            5,
            FunctionId::C_DecryptUpdate,
            CKR_ENCRYPTED_DATA_INVALID,
            10,
            0,
            false,
        )
        .into_iter()
        .collect();
    assert_eq!(done[0].rv, Rv(CKR_ENCRYPTED_DATA_INVALID));
    assert_eq!(t.in_flight(), 0);
}

#[test]
fn a_bad_signature_is_recorded_with_its_bytes() {
    let t = OpTracker::new();
    t.begin(
        5,
        OpKind::Verify,
        template(FunctionId::C_VerifyInit),
        Instant::now(),
    );
    let done: Vec<OpEvent> = t
        .data(5, FunctionId::C_Verify, CKR_SIGNATURE_INVALID, 96, 0, false)
        .into_iter()
        .collect();
    assert_eq!(
        (done[0].rv, done[0].bytes_in),
        (Rv(CKR_SIGNATURE_INVALID), 96)
    );
}

#[test]
fn dual_updates_feed_both_operations() {
    let t = OpTracker::new();
    t.begin(
        5,
        OpKind::Decrypt,
        template(FunctionId::C_DecryptInit),
        Instant::now(),
    );
    t.begin(
        5,
        OpKind::Verify,
        template(FunctionId::C_VerifyInit),
        Instant::now(),
    );
    assert!(t
        .data(5, FunctionId::C_DecryptVerifyUpdate, CKR_OK, 48, 32, false)
        .is_empty());
    let v: Vec<OpEvent> = t
        .data(5, FunctionId::C_VerifyFinal, CKR_OK, 64, 0, false)
        .into_iter()
        .collect();
    assert_eq!((v[0].bytes_in, v[0].bytes_out), (32 + 64, 0));
    let d: Vec<OpEvent> = t
        .data(5, FunctionId::C_DecryptFinal, CKR_OK, 0, 0, false)
        .into_iter()
        .collect();
    assert_eq!((d[0].bytes_in, d[0].bytes_out), (48, 32));
}

#[test]
fn closing_sessions_and_slots_abandons_operations() {
    let t = OpTracker::new();
    t.begin(
        5,
        OpKind::Sign,
        template(FunctionId::C_SignInit),
        Instant::now(),
    );
    t.begin(
        5,
        OpKind::Digest,
        template(FunctionId::C_DigestInit),
        Instant::now(),
    );
    let mut other = template(FunctionId::C_SignInit);
    other.slot = Some(2);
    t.begin(6, OpKind::Sign, other, Instant::now());
    let closed = t.close_session(5, FunctionId::C_CloseSession);
    assert_eq!(closed.len(), 2);
    assert!(closed
        .iter()
        .all(|e| e.rv == Rv(CKR_SESSION_CLOSED) && e.function == FunctionId::C_CloseSession));
    assert!(t
        .close_slot(Some(1), FunctionId::C_CloseAllSessions)
        .is_empty());
    assert_eq!(
        t.close_slot(Some(2), FunctionId::C_CloseAllSessions).len(),
        1
    );
    assert_eq!(t.in_flight(), 0);
}

#[test]
fn a_missed_end_is_returned_at_the_next_init_and_untracked_calls_are_ignored() {
    let t = OpTracker::new();
    t.begin(
        5,
        OpKind::Sign,
        template(FunctionId::C_SignInit),
        Instant::now(),
    );
    let stale = t.begin(
        5,
        OpKind::Sign,
        template(FunctionId::C_SignInit),
        Instant::now(),
    );
    assert_eq!(stale.map(|e| e.rv), Some(Rv(CKR_SESSION_CLOSED)));
    assert!(t
        .data(9, FunctionId::C_Sign, CKR_OK, 1, 1, false)
        .is_empty());
    assert!(t
        .data(5, FunctionId::C_GetSessionInfo, CKR_OK, 1, 1, false)
        .is_empty());
    assert!(t
        .abandon(5, OpKind::Sign, FunctionId::C_SessionCancel, CKR_OK)
        .is_some());
    assert_eq!(
        OpKind::from_init(FunctionId::C_VerifyRecoverInit),
        Some(OpKind::VerifyRecover)
    );
    assert_eq!(OpKind::from_init(FunctionId::C_Sign), None);
}

#[test]
fn sessions_sharing_a_shard_or_not_are_closed_apart_and_by_slot_across_shards() {
    let t = OpTracker::new();
    // 3 and 19 share a shard (16 of them); 4 has its own.
    for session in [3, 19, 4] {
        let mut op = template(FunctionId::C_SignInit);
        op.slot = Some(1);
        op.session = Some(session);
        t.begin(session, OpKind::Sign, op, Instant::now());
    }
    let closed = t.close_session(3, FunctionId::C_CloseSession);
    assert_eq!(
        closed.iter().map(|e| e.session).collect::<Vec<_>>(),
        [Some(3)]
    );
    let mut rest: Vec<_> = t
        .close_slot(Some(1), FunctionId::C_CloseAllSessions)
        .into_iter()
        .map(|e| e.session)
        .collect();
    rest.sort();
    assert_eq!(rest, [Some(4), Some(19)]);
    assert_eq!(t.in_flight(), 0);
}
