//! Lifecycle unit tests: the state/operation table, due dates under an injected
//! clock, and rotation/reconciliation against the real SQLite store and a fake token.

use std::cell::RefCell;
use std::sync::Arc;

use pkcs11_sys::{
    CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_KEY_HANDLE_INVALID,
};

use super::*;
use crate::policy::{Clock, ManualClock, Policy, SystemClock};
use crate::store::{KeyId, NewKey, NewVersion, OpenOptions, SqliteStore, Store, Usage, VersionId};

const DAY: i64 = 86_400;

fn version(state: KeyState, activated: Option<i64>) -> KeyVersion {
    KeyVersion {
        id: VersionId(1),
        key_id: KeyId(1),
        version: 1,
        token_serial: "s".into(),
        cka_id: vec![1],
        algorithm: "CKK_EC".into(),
        size_bits: None,
        curve: Some("P-256".into()),
        state,
        reason: None,
        created_at: 0,
        state_changed_at: 0,
        activated_at: activated,
        suspended_at: None,
        deactivated_at: None,
        compromised_at: None,
        destroyed_at: None,
        usage: Usage::default(),
    }
}

fn period(forensic: bool, when_due: &str) -> Cryptoperiod {
    let text = format!(
        "version = 1\n[[cryptoperiod]]\noriginator = \"90d\"\nrecipient = \"1y\"\n\
         when_due = \"{when_due}\"\nforensic_verify = {forensic}\n"
    );
    let p = Policy::compile(&text, "t.toml", Arc::new(SystemClock)).unwrap();
    p.cryptoperiods()[0].clone()
}

#[test]
fn state_table() {
    use KeyState::*;
    let key_ops = [
        Op::Sign,
        Op::Verify,
        Op::Encrypt,
        Op::Decrypt,
        Op::Wrap,
        Op::Unwrap,
        Op::Derive,
        Op::DigestWithKey,
        Op::Export,
    ];
    let cp = period(false, "warn");
    let now = 10 * DAY;
    for op in key_ops {
        let processing = matches!(op, Op::Verify | Op::Decrypt | Op::Unwrap);
        let ok = |s: KeyState| permits(&version(s, Some(0)), op, now, Some(&cp)).is_ok();
        assert!(ok(Active), "{op:?}");
        assert!(!ok(PreActivation), "{op:?}");
        assert!(!ok(Suspended), "{op:?}");
        assert_eq!(ok(Deactivated), processing, "{op:?}");
        assert!(!ok(Compromised), "{op:?}");
        assert!(!ok(Destroyed), "{op:?}");
    }
    let r = permits(&version(Suspended, Some(0)), Op::Sign, now, None).unwrap_err();
    assert_eq!(r.rv, CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert!(r.reason.contains("suspended"), "{}", r.reason);
    // Management operations are policy's; only a destroyed version refuses them.
    assert!(permits(&version(Compromised, None), Op::SetAttribute, now, None).is_ok());
    let gone = permits(&version(Destroyed, None), Op::SetAttribute, now, None).unwrap_err();
    assert_eq!(gone.rv, CKR_KEY_HANDLE_INVALID);
}

#[test]
fn forensic_verify_only_where_policy_allows_it() {
    let v = version(KeyState::Compromised, Some(0));
    assert!(permits(&v, Op::Verify, DAY, Some(&period(false, "warn"))).is_err());
    assert!(permits(&v, Op::Verify, DAY, None).is_err());
    let forensic = period(true, "warn");
    assert!(permits(&v, Op::Verify, DAY, Some(&forensic)).is_ok());
    assert!(permits(&v, Op::Decrypt, DAY, Some(&forensic)).is_err());
}

#[test]
fn deactivated_processing_ends_with_the_recipient_period() {
    let clock = ManualClock::at(0);
    let cp = period(false, "warn");
    let v = version(KeyState::Deactivated, Some(5 * DAY));
    clock.set(5 * DAY + 365 * DAY - 1);
    assert!(permits(&v, Op::Verify, clock.unix_seconds(), Some(&cp)).is_ok());
    clock.set(5 * DAY + 365 * DAY);
    let r = permits(&v, Op::Verify, clock.unix_seconds(), Some(&cp)).unwrap_err();
    assert!(r.reason.contains("recipient-usage period"), "{}", r.reason);
    // Without a cryptoperiod there is no end.
    assert!(permits(&v, Op::Decrypt, i64::MAX, None).is_ok());
}

#[test]
fn due_follows_the_injected_clock() {
    let clock = ManualClock::at(0);
    let cp = period(false, "rotate");
    let v = version(KeyState::Active, Some(DAY));
    clock.set(DAY);
    assert_eq!(due(&v, &cp, clock.unix_seconds()), Due::At(91 * DAY));
    clock.set(91 * DAY - 1);
    assert_eq!(due(&v, &cp, clock.unix_seconds()), Due::At(91 * DAY));
    clock.set(91 * DAY);
    assert_eq!(
        due(&v, &cp, clock.unix_seconds()),
        Due::Now {
            since: 91 * DAY,
            action: WhenDue::Rotate
        }
    );
    let s = schedule(&v, &cp);
    assert_eq!((s.originator_end, s.recipient_end), (91 * DAY, 366 * DAY));
    for st in [
        KeyState::Deactivated,
        KeyState::Compromised,
        KeyState::Destroyed,
    ] {
        assert_eq!(
            due(&version(st, Some(0)), &cp, i64::MAX),
            Due::NotApplicable
        );
    }
    // Never activated: counted from creation.
    let pre = version(KeyState::Suspended, None);
    assert_eq!(due(&pre, &cp, 0), Due::At(90 * DAY));
}

#[test]
fn rotation_ids_are_fresh_and_recognisable() {
    let a = new_cka_id().unwrap();
    let b = new_cka_id().unwrap();
    assert_ne!(a, b);
    assert!(is_rotation_id(&a));
    assert!(!is_rotation_id(b"KW"));
    assert!(!is_rotation_id(&[1; 16]));
}

/// One `set_dates` call: id, start, end.
type DateSet = (Vec<u8>, Option<i64>, Option<i64>);

/// An in-memory token: objects by `CKA_ID`.
#[derive(Default)]
struct FakeToken {
    objects: RefCell<Vec<TokenObject>>,
    dates: RefCell<Vec<DateSet>>,
}

impl FakeToken {
    fn pair(&self, id: &[u8], label: &str) {
        for class in [CKO_PRIVATE_KEY, CKO_PUBLIC_KEY] {
            self.objects.borrow_mut().push(TokenObject {
                class,
                id: id.to_vec(),
                label: label.into(),
            });
        }
    }
    fn count(&self, id: &[u8]) -> usize {
        self.objects.borrow().iter().filter(|o| o.id == id).count()
    }
}

impl TokenOps for FakeToken {
    fn serial(&self) -> String {
        "fake-serial".into()
    }
    fn find_by_id(&self, id: &[u8]) -> Result<Vec<TokenObject>, TokenError> {
        Ok(self
            .objects
            .borrow()
            .iter()
            .filter(|o| o.id == id)
            .cloned()
            .collect())
    }
    fn find_by_label(&self, label: &str) -> Result<Vec<TokenObject>, TokenError> {
        Ok(self
            .objects
            .borrow()
            .iter()
            .filter(|o| o.label == label)
            .cloned()
            .collect())
    }
    fn all_objects(&self) -> Result<Vec<TokenObject>, TokenError> {
        Ok(self.objects.borrow().clone())
    }
    fn shape(&self, id: &[u8]) -> Result<KeyShape, TokenError> {
        if self.count(id) == 0 {
            return Err(TokenError("no such key".into()));
        }
        Ok(KeyShape {
            algorithm: "CKK_EC".into(),
            size_bits: None,
            curve: Some("P-256".into()),
            ec_params: Some(vec![6, 8]),
            public_exponent: None,
            pair: true,
            private_flags: vec![],
            public_flags: vec![],
        })
    }
    fn generate(&self, _: &KeyShape, id: &[u8], label: &str, _: i64) -> Result<(), TokenError> {
        self.pair(id, label);
        Ok(())
    }
    fn set_dates(&self, id: &[u8], s: Option<i64>, e: Option<i64>) -> Result<(), TokenError> {
        self.dates.borrow_mut().push((id.to_vec(), s, e));
        Ok(())
    }
    fn set_label(&self, _: &[u8], _: &str) -> Result<(), TokenError> {
        Ok(())
    }
    fn destroy(&self, id: &[u8]) -> Result<usize, TokenError> {
        let n = self.count(id);
        self.objects.borrow_mut().retain(|o| o.id != id);
        Ok(n)
    }
}

fn managed(store: &SqliteStore, token: &FakeToken) -> crate::store::ManagedKey {
    let key = store
        .create_key(
            &NewKey {
                label: "app".into(),
                owner: None,
                classification: None,
                rotation_rule: None,
            },
            0,
        )
        .unwrap();
    token.pair(b"\x01", "app");
    store
        .add_version(
            key.id,
            &NewVersion {
                token_serial: token.serial(),
                cka_id: vec![1],
                algorithm: "CKK_EC".into(),
                size_bits: None,
                curve: Some("P-256".into()),
            },
            KeyState::Active,
            0,
        )
        .unwrap();
    key
}

#[test]
fn rotation_commits_and_dates_the_previous_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::create(dir.path(), &OpenOptions::default()).unwrap();
    let token = FakeToken::default();
    let key = managed(&store, &token);
    let id = new_cka_id().unwrap();
    let out = rotate(
        &store,
        &token,
        &key,
        Some(1),
        &id,
        Some("r"),
        50,
        &mut || {},
    )
    .unwrap();
    assert_eq!(out.current.version, 2);
    assert_eq!(out.current.cka_id, id);
    assert_eq!(out.previous.as_ref().unwrap().state, KeyState::Deactivated);
    assert_eq!(token.count(&id), 2);
    assert_eq!(
        token.dates.borrow().as_slice(),
        &[(vec![1], None, Some(50))]
    );
    // A stale expectation is a lost race, and creates nothing.
    let again = new_cka_id().unwrap();
    let err = rotate(&store, &token, &key, Some(1), &again, None, 60, &mut || {}).unwrap_err();
    assert!(
        matches!(err, RotateError::LostRace { destroyed: 0, .. }),
        "{err}"
    );
    assert_eq!(token.count(&again), 0);
}

#[test]
fn losing_the_store_race_destroys_the_new_objects() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::create(dir.path(), &OpenOptions::default()).unwrap();
    let other = SqliteStore::create(dir.path(), &OpenOptions::default()).unwrap();
    let token = FakeToken::default();
    let key = managed(&store, &token);
    let mine = new_cka_id().unwrap();
    let theirs = new_cka_id().unwrap();
    // Another process commits its rotation between our generation and our commit.
    let mut interloper = || {
        token.pair(&theirs, "app");
        let v1 = other.versions(key.id).unwrap()[0].id;
        let new = NewVersion {
            token_serial: "fake-serial".into(),
            cka_id: theirs.clone(),
            algorithm: "CKK_EC".into(),
            size_bits: None,
            curve: None,
        };
        other.rotate(key.id, Some(v1), &new, None, 5).unwrap();
    };
    let err = rotate(&store, &token, &key, None, &mine, None, 6, &mut interloper).unwrap_err();
    assert!(
        matches!(err, RotateError::LostRace { destroyed: 2, .. }),
        "{err}"
    );
    assert_eq!(token.count(&mine), 0, "the loser cleans up");
    let versions = store.versions(key.id).unwrap();
    assert_eq!(versions.len(), 2, "exactly one new version");
    assert_eq!(versions[1].cka_id, theirs);
}

#[test]
fn reconcile_removes_only_unrecorded_rotation_objects() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::create(dir.path(), &OpenOptions::default()).unwrap();
    let token = FakeToken::default();
    let key = managed(&store, &token);
    let live = new_cka_id().unwrap();
    rotate(&store, &token, &key, None, &live, None, 1, &mut || {}).unwrap();
    assert_eq!(
        store.pending("fake-serial").unwrap(),
        vec![],
        "the commit cleared it"
    );
    // A rotation that died between generation and commit: its intent, its objects.
    let orphan = new_cka_id().unwrap();
    store
        .begin_pending(&crate::store::PendingRotation {
            token_serial: token.serial(),
            cka_id: orphan.clone(),
            label: "app".into(),
            started_at: 2,
        })
        .unwrap();
    token.pair(&orphan, "app");
    token.pair(b"\x77", "someone-elses");
    // Keywarden-shaped, but no intent of this store: another store's key on the
    // same token.
    let another_stores = new_cka_id().unwrap();
    token.pair(&another_stores, "app");
    let dry = reconcile(&store, &token, true).unwrap();
    assert_eq!(dry.len(), 1);
    assert!(!dry[0].removed);
    assert_eq!(token.count(&orphan), 2);
    let done = reconcile(&store, &token, false).unwrap();
    assert_eq!(
        (done[0].cka_id.clone(), done[0].objects, done[0].removed),
        (orphan.clone(), 2, true)
    );
    assert_eq!(token.count(&orphan), 0);
    assert_eq!(store.pending("fake-serial").unwrap(), vec![]);
    assert_eq!(token.count(&live), 2);
    assert_eq!(token.count(b"\x77"), 2, "foreign IDs are never touched");
    assert_eq!(token.count(&another_stores), 2, "nor unrecorded KW IDs");
    assert_eq!(token.count(b"\x01"), 2);
    assert_eq!(reconcile(&store, &token, false).unwrap(), vec![]);
}

#[test]
fn a_rotation_writes_its_intent_before_generating_and_commits_it_away() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::create(dir.path(), &OpenOptions::default()).unwrap();
    let token = FakeToken::default();
    let key = managed(&store, &token);
    let id = new_cka_id().unwrap();
    let mut seen = Vec::new();
    rotate(&store, &token, &key, None, &id, None, 1, &mut || {
        seen = store.pending("fake-serial").unwrap();
    })
    .unwrap();
    assert_eq!(seen.len(), 1, "the intent is written before the objects");
    assert_eq!(
        (seen[0].cka_id.clone(), seen[0].label.as_str()),
        (id, "app")
    );
    // A live version's CKA_ID cannot be claimed by an intent.
    let clash = store.begin_pending(&crate::store::PendingRotation {
        token_serial: "fake-serial".into(),
        cka_id: vec![1],
        label: "app".into(),
        started_at: 3,
    });
    assert!(
        matches!(clash, Err(crate::store::StoreError::Conflict(_))),
        "{clash:?}"
    );
}

#[test]
fn index_answers_the_gateway_without_a_query() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::create(dir.path(), &OpenOptions::default()).unwrap();
    let token = FakeToken::default();
    let key = managed(&store, &token);
    let v2 = new_cka_id().unwrap();
    rotate(&store, &token, &key, None, &v2, None, 10, &mut || {}).unwrap();
    let index = LifecycleIndex::new(store.snapshot().unwrap());
    assert_eq!(index.change_seq(), store.change_seq().unwrap());
    assert_eq!(
        index.version("fake-serial", &[1]).unwrap().state,
        KeyState::Deactivated
    );
    assert_eq!(index.key("fake-serial", &v2).unwrap().label, "app");
    assert!(index.version("other-serial", &[1]).is_none());
    // Label searches see the active version only; unmanaged objects are untouched.
    assert!(index.hidden_from_label_search("fake-serial", &[1]));
    assert!(!index.hidden_from_label_search("fake-serial", &v2));
    assert!(!index.hidden_from_label_search("fake-serial", &[0x77]));
    // The state check.
    assert!(index.check("fake-serial", &v2, Op::Sign, 11, None).is_ok());
    assert!(index
        .check("fake-serial", &[1], Op::Verify, 11, None)
        .is_ok());
    let r = index
        .check("fake-serial", &[1], Op::Sign, 11, None)
        .unwrap_err();
    assert_eq!(r.rv, CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert!(
        index
            .check("fake-serial", &[0x77], Op::Sign, 11, None)
            .is_ok(),
        "unmanaged"
    );
    // After a compromise with no successor, the compromised version is current.
    let active = store
        .version_by_cka_id("fake-serial", &v2)
        .unwrap()
        .unwrap();
    store
        .set_state(active.id, KeyState::Compromised, Some("leak"), 12)
        .unwrap();
    let index = LifecycleIndex::new(store.snapshot().unwrap());
    assert!(!index.hidden_from_label_search("fake-serial", &v2));
    assert!(index.hidden_from_label_search("fake-serial", &[1]));
    assert!(index.check("fake-serial", &v2, Op::Sign, 13, None).is_err());
    // Destroyed versions leave the index.
    let old = store
        .version_by_cka_id("fake-serial", &[1])
        .unwrap()
        .unwrap();
    store
        .set_state(old.id, KeyState::Destroyed, None, 14)
        .unwrap();
    let index = LifecycleIndex::new(store.snapshot().unwrap());
    assert!(index.version("fake-serial", &[1]).is_none());
}

#[test]
fn index_applies_the_cryptoperiod_of_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::create(dir.path(), &OpenOptions::default()).unwrap();
    let token = FakeToken::default();
    let key = managed(&store, &token);
    let v2 = new_cka_id().unwrap();
    rotate(&store, &token, &key, None, &v2, None, 0, &mut || {}).unwrap();
    let policy = Policy::compile(
        "version = 1\n[[cryptoperiod]]\nlabel = \"app\"\noriginator = \"1d\"\nrecipient = \"2d\"\n",
        "t.toml",
        Arc::new(SystemClock),
    )
    .unwrap();
    let index = LifecycleIndex::new(store.snapshot().unwrap());
    // Version 1 was activated at 0: it verifies until day 2, not after.
    assert!(index
        .check("fake-serial", &[1], Op::Verify, 2 * DAY - 1, Some(&policy))
        .is_ok());
    assert!(index
        .check("fake-serial", &[1], Op::Verify, 2 * DAY, Some(&policy))
        .is_err());
    assert!(index
        .check("fake-serial", &[1], Op::Verify, 2 * DAY, None)
        .is_ok());
}
