//! Unit tests of keys, versions, states, rotation, usage and the change counter.

use super::tests::{fresh, new_key, new_version, open_in};
use super::*;
use crate::store::{Store, Usage};

fn raw(s: &SqliteStore) -> parking_lot::MutexGuard<'_, rusqlite::Connection> {
    s.conn.lock()
}

#[test]
fn keys_and_versions_round_trip_with_numbering() {
    let (_d, s) = fresh();
    let k = s.create_key(&new_key("signing"), 100).unwrap();
    assert_eq!(s.key(k.id).unwrap().unwrap(), k);
    let v1 = s
        .add_version(k.id, &new_version(b"\x01"), KeyState::Active, 101)
        .unwrap();
    let v2 = s
        .add_version(k.id, &new_version(b"\x02"), KeyState::PreActivation, 102)
        .unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(v1.activated_at, Some(101));
    assert_eq!(v2.activated_at, None);
    assert_eq!(v1.curve.as_deref(), Some("P-256"));
    assert_eq!(v1.usage, Usage::default());
    assert_eq!(s.versions(k.id).unwrap(), vec![v1.clone(), v2]);
    assert_eq!(
        s.version_by_cka_id("0123456789abcdef", b"\x01").unwrap(),
        Some(v1)
    );
    assert_eq!(s.version_by_cka_id("other-token", b"\x01").unwrap(), None);
    // Labels are not unique: a second key under the same label stays its own key.
    let k2 = s.create_key(&new_key("signing"), 103).unwrap();
    assert_eq!(s.keys_by_label("signing").unwrap(), vec![k, k2]);
    assert!(matches!(
        s.add_version(KeyId(999), &new_version(b"\x09"), KeyState::Active, 1),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.add_version(KeyId(1), &new_version(b""), KeyState::Active, 1),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.add_version(KeyId(1), &new_version(b"\x05"), KeyState::Deactivated, 1),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.create_key(&new_key(""), 1),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn two_active_versions_are_refused_by_the_api_and_by_the_schema() {
    let (_d, s) = fresh();
    let k = s.create_key(&new_key("k"), 1).unwrap();
    let v1 = s
        .add_version(k.id, &new_version(b"a"), KeyState::Active, 1)
        .unwrap();
    let v2 = s
        .add_version(k.id, &new_version(b"b"), KeyState::PreActivation, 1)
        .unwrap();
    assert!(matches!(
        s.add_version(k.id, &new_version(b"c"), KeyState::Active, 1),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.set_state(v2.id, KeyState::Active, None, 2),
        Err(StoreError::Conflict(_))
    ));
    // Bypassing the API: the partial unique index holds on its own.
    let err = raw(&s)
        .execute(
            "UPDATE key_versions SET state = 'active', activated_at = 3 WHERE id = ?1",
            [v2.id.0],
        )
        .unwrap_err();
    assert_eq!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation)
    );
    assert!(err.to_string().contains("UNIQUE"), "{err}");
    // Other versions of *other* keys may be active at the same time.
    let k2 = s.create_key(&new_key("k2"), 1).unwrap();
    s.add_version(k2.id, &new_version(b"z"), KeyState::Active, 1)
        .unwrap();
    assert_eq!(s.version(v1.id).unwrap().unwrap().state, KeyState::Active);
}

#[test]
fn schema_checks_refuse_impossible_rows() {
    let (_d, s) = fresh();
    let k = s.create_key(&new_key("k"), 1).unwrap();
    let v = s
        .add_version(k.id, &new_version(b"a"), KeyState::PreActivation, 1)
        .unwrap();
    let conn = raw(&s);
    for sql in [
        "UPDATE key_versions SET state = 'retired' WHERE id = ?1",
        // active without an activation time
        "UPDATE key_versions SET state = 'active' WHERE id = ?1",
        "UPDATE key_versions SET state = 'destroyed' WHERE id = ?1",
        "UPDATE key_versions SET key_id = 4242 WHERE id = ?1",
        "INSERT INTO usage (version_id, ops) VALUES (?1, -1)",
    ] {
        let err = conn.execute(sql, [v.id.0]).unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation),
            "{sql}: {err}"
        );
    }
    let err = conn
        .execute(
            "INSERT INTO identities (name, phc, created_at) VALUES ('a', 'plain', 1)",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("CHECK"), "{err}");
}

#[test]
fn a_live_cka_id_belongs_to_one_version_and_tombstones_free_it() {
    let (_d, s) = fresh();
    let k = s.create_key(&new_key("k"), 1).unwrap();
    let v = s
        .add_version(k.id, &new_version(b"same"), KeyState::PreActivation, 1)
        .unwrap();
    assert!(matches!(
        s.add_version(k.id, &new_version(b"same"), KeyState::PreActivation, 2),
        Err(StoreError::Conflict(_))
    ));
    s.set_state(v.id, KeyState::Destroyed, Some("cleanup"), 3)
        .unwrap();
    let again = s
        .add_version(k.id, &new_version(b"same"), KeyState::Active, 4)
        .unwrap();
    assert_eq!(again.version, 2);
    assert_eq!(
        s.version_by_cka_id("0123456789abcdef", b"same").unwrap(),
        Some(again)
    );
}

#[test]
fn states_follow_sp800_57_and_record_their_times() {
    let (_d, s) = fresh();
    let k = s.create_key(&new_key("k"), 1).unwrap();
    let v = s
        .add_version(k.id, &new_version(b"a"), KeyState::PreActivation, 10)
        .unwrap();
    let v = s.set_state(v.id, KeyState::Active, None, 20).unwrap();
    assert_eq!(
        (v.state, v.activated_at, v.state_changed_at),
        (KeyState::Active, Some(20), 20)
    );
    let v = s
        .set_state(v.id, KeyState::Suspended, Some("audit"), 30)
        .unwrap();
    assert_eq!(
        (v.suspended_at, v.reason.as_deref()),
        (Some(30), Some("audit"))
    );
    let v = s.set_state(v.id, KeyState::Active, None, 40).unwrap();
    assert_eq!(
        (v.activated_at, v.suspended_at),
        (Some(20), None),
        "first activation kept"
    );
    let v = s.set_state(v.id, KeyState::Deactivated, None, 50).unwrap();
    assert_eq!(v.deactivated_at, Some(50));
    match s.set_state(v.id, KeyState::Active, None, 55) {
        Err(StoreError::InvalidTransition {
            from: "deactivated",
            to: "active",
        }) => {}
        other => panic!("{other:?}"),
    }
    let v = s
        .set_state(v.id, KeyState::Compromised, Some("leaked"), 60)
        .unwrap();
    assert_eq!(
        (v.compromised_at, v.reason.as_deref()),
        (Some(60), Some("leaked"))
    );
    let v = s.set_state(v.id, KeyState::Destroyed, None, 70).unwrap();
    assert_eq!((v.destroyed_at, v.state_changed_at), (Some(70), 70));
    assert!(matches!(
        s.set_state(VersionId(999), KeyState::Active, None, 1),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn rotate_swaps_the_active_version_and_refuses_a_stale_expectation() {
    let (_d, s) = fresh();
    let k = s.create_key(&new_key("k"), 1).unwrap();
    // First rotation of a key without versions: expected None.
    let r1 = s.rotate(k.id, None, &new_version(b"v1"), None, 10).unwrap();
    assert_eq!(
        (r1.previous, r1.current.version, r1.current.state),
        (None, 1, KeyState::Active)
    );
    let r2 = s
        .rotate(
            k.id,
            Some(r1.current.id),
            &new_version(b"v2"),
            Some("cryptoperiod"),
            20,
        )
        .unwrap();
    let prev = r2.previous.unwrap();
    assert_eq!(
        (prev.id, prev.state, prev.deactivated_at),
        (r1.current.id, KeyState::Deactivated, Some(20))
    );
    assert_eq!(prev.reason.as_deref(), Some("cryptoperiod"));
    assert_eq!(
        (r2.current.version, r2.current.state),
        (2, KeyState::Active)
    );
    // A second process that still believes v1 is active loses, changing nothing.
    let seq = s.change_seq().unwrap();
    let err = s
        .rotate(k.id, Some(r1.current.id), &new_version(b"v3"), None, 30)
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.versions(k.id).unwrap().len(), 2);
    assert_eq!(s.change_seq().unwrap(), seq);
}

#[test]
fn a_rotation_failing_at_any_step_leaves_the_old_state_intact() {
    for fail_at in [
        RotateStep::Inserted,
        RotateStep::Deactivated,
        RotateStep::Activated,
    ] {
        let (d, s) = fresh();
        let k = s.create_key(&new_key("k"), 1).unwrap();
        let v1 = s
            .add_version(k.id, &new_version(b"v1"), KeyState::Active, 1)
            .unwrap();
        let before = s.snapshot().unwrap();
        let stamp = std::fs::read_to_string(d.path().join(STAMP_FILE)).unwrap();
        let mut steps = Vec::new();
        let err = s
            .rotate_with(
                k.id,
                Some(v1.id),
                &new_version(b"v2"),
                None,
                5,
                &mut |step| {
                    steps.push(step);
                    if step == fail_at {
                        Err(StoreError::Other {
                            path: "injected".into(),
                            detail: "fault".into(),
                        })
                    } else {
                        Ok(())
                    }
                },
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::Other { .. }), "{err:?}");
        assert_eq!(steps.last(), Some(&fail_at));
        assert_eq!(s.snapshot().unwrap(), before, "failing at {fail_at:?}");
        assert_eq!(
            std::fs::read_to_string(d.path().join(STAMP_FILE)).unwrap(),
            stamp
        );
        // And the store is usable: the same rotation now succeeds.
        let r = s
            .rotate(k.id, Some(v1.id), &new_version(b"v2"), None, 6)
            .unwrap();
        assert_eq!(r.current.version, 2);
    }
}

#[test]
fn usage_adds_up_without_moving_the_change_counter() {
    let (_d, s) = fresh();
    let k = s.create_key(&new_key("k"), 1).unwrap();
    let v = s
        .add_version(k.id, &new_version(b"a"), KeyState::Active, 1)
        .unwrap();
    let seq = s.change_seq().unwrap();
    let acc = crate::store::UsageAccumulator::new();
    for t in 0..100 {
        acc.record(v.id, 32, 1000 + t);
    }
    assert_eq!(acc.flush(&s).unwrap(), 1);
    s.add_usage(&[UsageDelta {
        version: v.id,
        ops: 1,
        bytes: 1,
        last_use_at: 50,
    }])
    .unwrap();
    let u = s.version(v.id).unwrap().unwrap().usage;
    assert_eq!(
        (u.ops, u.bytes, u.last_use_at),
        (101, 3201, Some(1099)),
        "last use never goes back"
    );
    assert_eq!(s.change_seq().unwrap(), seq);
    // Counts for an unknown version are refused, and a failed flush keeps its counts.
    acc.record(VersionId(999), 1, 1);
    assert!(matches!(acc.flush(&s), Err(StoreError::Conflict(_))));
    assert_eq!(acc.len(), 1);
}

#[test]
fn every_cached_change_moves_the_counter_and_rewrites_the_stamp() {
    let (d, s) = fresh();
    let stamp = || std::fs::read_to_string(d.path().join(STAMP_FILE)).unwrap();
    let mut last = s.change_seq().unwrap();
    let mut moved = |what: &str| {
        let now = s.change_seq().unwrap();
        assert!(now > last, "{what}: {now} after {last}");
        assert_eq!(stamp(), format!("{now}\n"), "{what}");
        last = now;
    };
    let k = s.create_key(&new_key("k"), 1).unwrap();
    moved("create key");
    let v = s
        .add_version(k.id, &new_version(b"a"), KeyState::Active, 1)
        .unwrap();
    moved("add version");
    s.set_state(v.id, KeyState::Suspended, None, 2).unwrap();
    moved("suspend");
    let h = crate::store::identity::hash_secret(b"secret-12345").unwrap();
    s.add_identity("alice", &h, &["r".into()], 3).unwrap();
    moved("add identity");
    s.set_identity_disabled("alice", true).unwrap();
    moved("disable identity");
    s.remove_identity("alice").unwrap();
    moved("remove identity");
    let snap = s.snapshot().unwrap();
    assert_eq!(snap.change_seq, s.change_seq().unwrap());
    assert_eq!((snap.keys.len(), snap.versions.len()), (1, 1));
    drop(s);
    assert_eq!(open_in(d.path()).change_seq().unwrap(), snap.change_seq);
}
