//! Tests of hashing, verifying and PIN parsing (with a real SQLite store where a store
//! is involved).

use std::time::{Duration, Instant};

use super::*;
use crate::store::{OpenOptions, SqliteStore};

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::create(dir.path(), &OpenOptions::default()).unwrap();
    (dir, s)
}

fn roles(r: &[&str]) -> Vec<String> {
    r.iter().map(|s| s.to_string()).collect()
}

#[test]
fn hash_is_salted_argon2id_and_never_the_secret() {
    let secret = b"correct horse battery";
    let a = hash_secret(secret).unwrap();
    let b = hash_secret(secret).unwrap();
    assert!(
        a.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        a.as_str()
    );
    assert_ne!(a, b, "a fresh random salt each time");
    for h in [&a, &b] {
        assert!(!h.as_str().contains("correct horse"));
        assert!(verify_secret(secret, h).unwrap());
        assert!(!verify_secret(b"correct horse batterz", h).unwrap());
    }
}

#[test]
fn a_malformed_or_foreign_hash_is_an_error_not_a_match() {
    for bad in [
        "",
        "plaintext",
        "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
    ] {
        assert!(
            verify_secret(b"whatever1", &PhcHash::new(bad.into())).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn secret_and_name_rules() {
    assert!(hash_secret(b"short").is_err());
    assert!(hash_secret(&[b'x'; MAX_SECRET_LEN + 1]).is_err());
    let msg = hash_secret(b"tiny").unwrap_err().to_string();
    assert!(!msg.contains("tiny"), "{msg}");
    for good in ["alice", "svc.backup-2", "A_1"] {
        assert!(validate_name(good).is_ok(), "{good}");
    }
    for bad in ["", "-x", ".x", "a:b", "a b", "é", &"a".repeat(65)] {
        assert!(validate_name(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn pins_split_at_the_first_colon_when_the_name_is_well_formed() {
    assert_eq!(parse_pin(b"1234"), Pin::Token(b"1234"));
    assert_eq!(
        parse_pin(b"alice:s3cr:et"),
        Pin::Named {
            name: "alice",
            secret: b"s3cr:et"
        }
    );
    assert_eq!(
        parse_pin(b"alice:"),
        Pin::Named {
            name: "alice",
            secret: b""
        }
    );
    // Not a name before the colon: a token PIN, untouched.
    assert_eq!(parse_pin(b":1234"), Pin::Token(b":1234"));
    assert_eq!(parse_pin(b"a b:x"), Pin::Token(b"a b:x"));
    assert_eq!(parse_pin(b"\xff\xfe:x"), Pin::Token(b"\xff\xfe:x"));
    assert_eq!(parse_pin(b""), Pin::Token(b""));
    let shown = format!(
        "{:?} {:?}",
        parse_pin(b"alice:hunter22"),
        parse_pin(b"hunter22")
    );
    assert!(!shown.contains("hunter22"), "{shown}");
    assert!(shown.contains("alice"), "{shown}");
}

#[test]
fn verify_accepts_the_right_secret_only_for_enabled_known_names() {
    let (_d, s) = store();
    let added = add(
        &s,
        "alice",
        b"alice-secret-1",
        &roles(&["signer", "admin"]),
        10,
    )
    .unwrap();
    assert_eq!(added.roles, roles(&["admin", "signer"]));
    let ok = verify(&s, "alice", b"alice-secret-1").unwrap().unwrap();
    assert_eq!(ok.name, "alice");
    assert_eq!(ok.roles, roles(&["admin", "signer"]));
    assert_eq!(verify(&s, "alice", b"alice-secret-2").unwrap(), None);
    assert_eq!(verify(&s, "bob", b"alice-secret-1").unwrap(), None);
    assert_eq!(verify(&s, "not a name", b"alice-secret-1").unwrap(), None);

    s.set_identity_disabled("alice", true).unwrap();
    assert_eq!(verify(&s, "alice", b"alice-secret-1").unwrap(), None);
    s.set_identity_disabled("alice", false).unwrap();

    set_secret(&s, "alice", b"alice-secret-2").unwrap();
    assert_eq!(verify(&s, "alice", b"alice-secret-1").unwrap(), None);
    assert!(verify(&s, "alice", b"alice-secret-2").unwrap().is_some());
    assert!(matches!(
        set_secret(&s, "bob", b"bob-secret-1"),
        Err(StoreError::NotFound(_))
    ));

    assert!(matches!(
        add(&s, "alice", b"another-secret", &[], 11),
        Err(StoreError::Conflict(_))
    ));
    assert!(add(&s, "carol", b"carol-secret", &roles(&["bad role"]), 11).is_err());

    assert!(s.remove_identity("alice").unwrap());
    assert!(!s.remove_identity("alice").unwrap());
    assert_eq!(verify(&s, "alice", b"alice-secret-2").unwrap(), None);
    assert!(s.identities().unwrap().is_empty());
}

#[test]
fn the_clear_secret_is_nowhere_in_the_store_files() {
    let (d, s) = store();
    let secret = b"Zq7-unmistakable-secret-bytes";
    add(&s, "alice", secret, &roles(&["signer"]), 10).unwrap();
    set_secret(&s, "alice", secret).unwrap();
    assert!(verify(&s, "alice", secret).unwrap().is_some());
    let (_, hash) = s.identity_with_hash("alice").unwrap().unwrap();
    drop(s);
    let mut searched = 0;
    for entry in std::fs::read_dir(d.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        searched += bytes.len();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "secret found in a store file"
        );
    }
    // The files do hold the hash: the search looked at the right bytes.
    let db = std::fs::read(d.path().join(crate::store::DB_FILE)).unwrap();
    let h = hash.as_str().as_bytes();
    assert!(
        db.windows(h.len()).any(|w| w == h),
        "hash expected in the db"
    );
    assert!(searched > 0);
}

#[test]
fn verify_time_is_bounded() {
    let (_d, s) = store();
    add(&s, "alice", b"alice-secret-1", &[], 10).unwrap();
    let mut times = Vec::new();
    for secret in [&b"alice-secret-1"[..], b"wrong-secret", b"alice-secret-1"] {
        let t = Instant::now();
        let _ = verify(&s, "alice", secret).unwrap();
        times.push(t.elapsed());
    }
    let t = Instant::now();
    assert_eq!(verify(&s, "nobody", b"alice-secret-1").unwrap(), None);
    let unknown = t.elapsed();
    let best = times.iter().min().copied().unwrap();
    eprintln!("argon2id verify: {times:?}; unknown name: {unknown:?}");
    // argon2 is built optimised even in test builds (Cargo.toml); the bound is loose
    // because CI shares two cores with other tests.
    assert!(best < Duration::from_millis(250), "{best:?}");
    assert!(
        unknown * 4 > best,
        "unknown names cost argon2 work too: {unknown:?}"
    );
}
