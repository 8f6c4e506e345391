//! The lifecycle through the cdylib in enforce mode (docs/lifecycle.md, "Gateway
//! integration"): states refuse what SP 800-57 forbids, a search by label finds the
//! current version only, and CLI state changes reach a running process within 1 s.
//! Keys are made on SoftHSM directly and adopted with `keywarden keys adopt`.
mod common;
mod lifecycle_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cryptoki::error::RvError;
use cryptoki::object::{AttributeType, ObjectClass};
use lifecycle_support::*;

const LABEL: &str = "app-sign";
const ID1: &[u8] = &[0xa1];
const PRIVATE: ObjectClass = ObjectClass::PRIVATE_KEY;
const PUBLIC: ObjectClass = ObjectClass::PUBLIC_KEY;

fn adopted(settings: &str, extra: &str) -> Lc {
    let lc = Lc::new(&policy(settings, extra));
    lc.direct(|s| generate(s, LABEL, Some(ID1)));
    assert!(lc.ok(&["adopt", LABEL]).contains("version 1"));
    lc
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn uri(object: &str) -> String {
    format!(
        "pkcs11:token={};{object};pin-value={}",
        common::TOKEN_LABEL,
        common::USER_PIN
    )
}

#[test]
fn rotation_keeps_openssl_signing_by_label_while_the_key_changes() {
    let lc = adopted("", "");
    let data = lc.env.path().join("data");
    std::fs::write(&data, b"payload\n").unwrap();
    let sig = |n: &str| lc.env.path().join(n);
    let by_label_private = uri(&format!("object={LABEL};type=private"));
    let by_label_public = uri(&format!("object={LABEL};type=public"));

    let point = || {
        let p11 = common::load(&common::keywarden_module());
        let s = user_session(&p11);
        let p = attr_bytes(&s, one(by_label(&s, LABEL, PUBLIC)), AttributeType::EcPoint);
        assert_eq!(by_label(&s, LABEL, PRIVATE).len(), 1);
        drop(s);
        p11.finalize().unwrap();
        p
    };
    let before = point();
    let signed = |name: &str| {
        let out = lc
            .env
            .command("openssl")
            .env("PKCS11_MODULE_PATH", common::keywarden_module())
            .args(["dgst", "-sha256", "-engine", "pkcs11", "-keyform", "engine"])
            .args(["-sign", &by_label_private, "-out"])
            .arg(sig(name))
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    };
    let verified = |key_uri: &str, name: &str| {
        lc.env
            .command("openssl")
            .env("PKCS11_MODULE_PATH", common::keywarden_module())
            .args(["dgst", "-sha256", "-engine", "pkcs11", "-keyform", "engine"])
            .args(["-verify", key_uri, "-signature"])
            .arg(sig(name))
            .arg(&data)
            .output()
            .unwrap()
    };
    signed("sig1");
    let out = verified(&by_label_public, "sig1");
    assert!(text(&out).contains("Verified OK"), "{}", text(&out));

    assert!(lc.ok(&["rotate", LABEL]).contains("version 2"));
    let after = point();
    assert_ne!(before, after, "the label now finds a new public key");

    // Same URI, same client, no configuration change: it signs with version 2.
    signed("sig2");
    let out = verified(&by_label_public, "sig2");
    assert!(text(&out).contains("Verified OK"), "{}", text(&out));
    let out = verified(&by_label_public, "sig1");
    assert!(!text(&out).contains("Verified OK"), "{}", text(&out));
    // The old signature still verifies with the deactivated version, found by
    // CKA_ID (libp11 enumerates without CKA_ID, so it cannot ask for an old
    // version: the check goes through cryptoki on the same digest).
    let digest = lc
        .env
        .command("openssl")
        .args(["dgst", "-sha256", "-binary"])
        .arg(&data)
        .output()
        .unwrap()
        .stdout;
    let raw = der_to_raw(&std::fs::read(sig("sig1")).unwrap());
    let p11 = common::load(&common::keywarden_module());
    let s = user_session(&p11);
    let old_public = one(by_id(&s, ID1, PUBLIC));
    s.verify(
        &cryptoki::mechanism::Mechanism::Ecdsa,
        old_public,
        &digest,
        &raw,
    )
    .unwrap();
    drop(s);
    p11.finalize().unwrap();
}

/// An ECDSA-Sig-Value (DER SEQUENCE of two INTEGERs, as OpenSSL writes it) as
/// the 64-byte r || s that CKM_ECDSA takes for P-256.
fn der_to_raw(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x30, "{der:02x?}");
    let mut at = 2;
    let mut out = Vec::new();
    for _ in 0..2 {
        assert_eq!(der[at], 0x02);
        let len = usize::from(der[at + 1]);
        let int = &der[at + 2..at + 2 + len];
        let int = &int[int.len().saturating_sub(32)..];
        out.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        out.extend_from_slice(int);
        at += 2 + len;
    }
    out
}

#[test]
fn a_deactivated_version_verifies_but_does_not_sign() {
    let lc = adopted("", "");
    let p11 = common::load(&common::keywarden_module());
    let s = user_session(&p11);
    let old_sig = sign(&s, one(by_id(&s, ID1, PRIVATE))).unwrap();
    lc.ok(&["rotate", LABEL]);
    // The watcher sees the store change within a poll interval.
    let deadline = Instant::now() + Duration::from_secs(3);
    let refused = loop {
        match sign(&s, one(by_id(&s, ID1, PRIVATE))) {
            Err(rv) => break rv,
            Ok(_) => assert!(Instant::now() < deadline, "still signing with version 1"),
        }
    };
    assert_eq!(refused, RvError::KeyFunctionNotPermitted);
    verify(&s, one(by_id(&s, ID1, PUBLIC)), &old_sig).unwrap();
    // By label: only version 2's objects; by CKA_ID: version 1's still there.
    let new_private = one(by_label(&s, LABEL, PRIVATE));
    let new_id = attr_bytes(&s, new_private, AttributeType::Id);
    assert_ne!(new_id, ID1);
    let sig2 = sign(&s, new_private).unwrap();
    verify(&s, one(by_label(&s, LABEL, PUBLIC)), &sig2).unwrap();
    assert_eq!(by_id(&s, ID1, PRIVATE).len(), 1);
    // An enumeration without CKA_ID (how libp11 resolves `object=LABEL`) shows
    // the current version only, like a search by label.
    let all = find(&s, &[cryptoki::object::Attribute::Class(PRIVATE)]);
    assert_eq!(all, vec![new_private]);
    drop(s);
    p11.finalize().unwrap();
    // Usage counters reach the store at C_Finalize at the latest.
    let vs = lc.versions(LABEL);
    assert!(vs[0]["usage"]["ops"].as_u64().unwrap() >= 2, "{vs:?}");
    assert!(vs[1]["usage"]["ops"].as_u64().unwrap() >= 1, "{vs:?}");
}

#[test]
fn compromise_stops_a_long_lived_signer_within_a_second() {
    let lc = adopted("", "");
    let p11 = common::load(&common::keywarden_module());
    let stop = Arc::new(AtomicBool::new(false));
    let first_refusal: Arc<Mutex<Option<(Instant, RvError)>>> = Arc::new(Mutex::new(None));
    let signed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let signer = {
        let (stop, first_refusal, signed) = (stop.clone(), first_refusal.clone(), signed.clone());
        let s = user_session(&p11);
        std::thread::spawn(move || {
            let key = one(by_label(&s, LABEL, PRIVATE));
            while !stop.load(Ordering::Relaxed) {
                match sign(&s, key) {
                    Ok(_) => {
                        signed.fetch_add(1, Ordering::Relaxed);
                    }
                    // SoftHSM may fail an operation racing the CLI's write of
                    // CKA_END_DATE to the same object (another process's file
                    // rewrite): not the refusal being measured.
                    Err(RvError::ObjectHandleInvalid | RvError::GeneralError) => {}
                    Err(rv) => {
                        let mut f = first_refusal.lock().unwrap();
                        if f.is_none() {
                            *f = Some((Instant::now(), rv));
                        }
                    }
                }
            }
        })
    };
    // The client is signing before the compromise.
    let deadline = Instant::now() + Duration::from_secs(5);
    while signed.load(Ordering::Relaxed) < 10 {
        assert!(Instant::now() < deadline, "the signer does not sign");
        std::thread::yield_now();
    }
    lc.ok(&["compromise", "--reason", "key file leaked", LABEL]);
    let cli_done = Instant::now();
    let (at, rv) = loop {
        if let Some(r) = *first_refusal.lock().unwrap() {
            break r;
        }
        assert!(
            cli_done.elapsed() < Duration::from_secs(5),
            "still signing 5 s after the compromise"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    stop.store(true, Ordering::Relaxed);
    signer.join().unwrap();
    let lag = at.saturating_duration_since(cli_done);
    println!("first refusal {lag:?} after `keys compromise` exited");
    assert!(lag < Duration::from_secs(1), "{lag:?}");
    assert_eq!(rv, RvError::KeyFunctionNotPermitted);
    p11.finalize().unwrap();
}

#[test]
fn a_suspended_key_is_refused_and_a_resumed_one_signs() {
    let lc = adopted("", "");
    let p11 = common::load(&common::keywarden_module());
    let s = user_session(&p11);
    let key = one(by_label(&s, LABEL, PRIVATE));
    sign(&s, key).unwrap();
    let until = |want_ok: bool| sign_until(&s, key, want_ok);
    lc.ok(&["suspend", "--reason", "audit", LABEL]);
    assert_eq!(until(false), Err(RvError::KeyFunctionNotPermitted));
    // Suspended: verification too (SP 800-57: no use at all).
    let pubkey = one(by_label(&s, LABEL, PUBLIC));
    assert_eq!(
        verify(&s, pubkey, &[0u8; 64]),
        Err(RvError::KeyFunctionNotPermitted)
    );
    lc.ok(&["resume", "--reason", "audit done", LABEL]);
    assert!(until(true).is_ok());
    drop(s);
    p11.finalize().unwrap();
}

#[test]
fn unmanaged_keys_follow_the_policy_setting() {
    let lc = adopted("", "");
    lc.direct(|s| generate(s, "legacy", Some(&[0xb2])));
    for (setting, sign_ok, verify_ok) in [
        ("", true, true),
        ("unmanaged_keys = \"allow\"", true, true),
        ("unmanaged_keys = \"processing\"", false, true),
        ("unmanaged_keys = \"deny\"", false, false),
    ] {
        lc.set_policy(&policy(setting, ""));
        let p11 = common::load(&common::keywarden_module());
        let s = user_session(&p11);
        // The managed key signs under every setting.
        let sig = sign(&s, one(by_label(&s, LABEL, PRIVATE))).unwrap();
        verify(&s, one(by_label(&s, LABEL, PUBLIC)), &sig).unwrap();
        let legacy = sign(&s, one(by_label(&s, "legacy", PRIVATE)));
        assert_eq!(legacy.is_ok(), sign_ok, "{setting}: sign {legacy:?}");
        if !sign_ok {
            assert_eq!(legacy, Err(RvError::KeyFunctionNotPermitted));
        }
        // A signature the managed key made does not verify under the legacy key;
        // what matters is whether the verification was allowed to run.
        let v = verify(&s, one(by_label(&s, "legacy", PUBLIC)), &sig);
        let ran = !matches!(v, Err(RvError::KeyFunctionNotPermitted));
        assert_eq!(ran, verify_ok, "{setting}: verify {v:?}");
        drop(s);
        p11.finalize().unwrap();
    }
}

#[test]
fn expiry_follows_the_cryptoperiod_on_an_injected_clock() {
    const DAY: i64 = 86_400;
    let lc = adopted(
        "",
        r#"
[[cryptoperiod]]
name = "signing"
label = "app-*"
originator = "90d"
recipient = "1y"
when_due = "deactivate"
"#,
    );
    lc.ok(&["rotate", LABEL]);
    lc.env.clock_override(true);
    let now = keywarden::store::now();
    let sig_v1 = |s: &cryptoki::session::Session| sign(s, one(by_id(s, ID1, PRIVATE)));
    let at = |offset_days: i64, f: &dyn Fn(&cryptoki::session::Session)| {
        std::env::set_var("KEYWARDEN_NOW", (now + offset_days * DAY).to_string());
        let p11 = common::load(&common::keywarden_module());
        let s = user_session(&p11);
        f(&s);
        drop(s);
        p11.finalize().unwrap();
        std::env::remove_var("KEYWARDEN_NOW");
    };
    // Made today by the SoftHSM directly, to check verifications with.
    let p11 = common::load(std::path::Path::new(common::SOFTHSM_MODULE));
    let s = user_session(&p11);
    let v2_id = unhex(lc.versions(LABEL)[1]["cka_id"].as_str().unwrap());
    let v2_sig = sign(&s, one(by_id(&s, &v2_id, PRIVATE))).unwrap();
    let v1_sig = sign(&s, one(by_id(&s, ID1, PRIVATE))).unwrap();
    drop(s);
    p11.finalize().unwrap();

    at(10, &|s| {
        // Version 2 is active and inside its originator period.
        sign(s, one(by_label(s, LABEL, PRIVATE))).unwrap();
        verify(s, one(by_id(s, &v2_id, PUBLIC)), &v2_sig).unwrap();
        // Version 1 is deactivated: verify only.
        assert_eq!(sig_v1(s), Err(RvError::KeyFunctionNotPermitted));
        verify(s, one(by_id(s, ID1, PUBLIC)), &v1_sig).unwrap();
    });
    at(100, &|s| {
        // Past version 2's originator period (when_due = "deactivate"): no more
        // signing, but it still verifies until its recipient period ends.
        assert_eq!(
            sign(s, one(by_label(s, LABEL, PRIVATE))),
            Err(RvError::KeyFunctionNotPermitted)
        );
        verify(s, one(by_id(s, &v2_id, PUBLIC)), &v2_sig).unwrap();
        verify(s, one(by_id(s, ID1, PUBLIC)), &v1_sig).unwrap();
    });
    at(400, &|s| {
        // Past the recipient-usage period: nothing.
        assert_eq!(
            verify(s, one(by_id(s, ID1, PUBLIC)), &v1_sig),
            Err(RvError::KeyFunctionNotPermitted)
        );
        assert_eq!(
            verify(s, one(by_id(s, &v2_id, PUBLIC)), &v2_sig),
            Err(RvError::KeyFunctionNotPermitted)
        );
    });
    // Without `[policy] clock_override = true` the variable is ignored: an
    // application's environment cannot move the clock (here: past the period).
    lc.env.clock_override(false);
    at(100, &|s| {
        sign(s, one(by_label(s, LABEL, PRIVATE))).unwrap();
    });
}

#[test]
fn a_missing_store_fails_initialisation() {
    let lc = adopted("", "");
    let store = lc.env.path().join("store");
    std::fs::rename(&store, lc.env.path().join("store.moved")).unwrap();
    let p11 = cryptoki::context::Pkcs11::new(common::keywarden_module()).unwrap();
    let r = p11.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    assert!(
        matches!(
            r,
            Err(cryptoki::error::Error::Pkcs11(RvError::GeneralError, _))
        ),
        "{r:?}"
    );
}

#[test]
fn an_unreadable_store_refuses_key_use_until_it_is_back() {
    let lc = adopted("", "");
    let p11 = common::load(&common::keywarden_module());
    let s = user_session(&p11);
    let key = one(by_label(&s, LABEL, PRIVATE));
    sign(&s, key).unwrap();
    // Another process breaks the store under the running module: the change
    // counter can no longer be read.
    let db = rusqlite::Connection::open(lc.env.path().join("store/keywarden.db")).unwrap();
    db.execute_batch("ALTER TABLE meta RENAME TO meta_away")
        .unwrap();
    let until = |want_ok: bool| sign_until(&s, key, want_ok);
    // Fail closed: refused, not allowed on the stale index.
    assert_eq!(until(false), Err(RvError::GeneralError));
    db.execute_batch("ALTER TABLE meta_away RENAME TO meta")
        .unwrap();
    assert!(until(true).is_ok());
    drop(s);
    p11.finalize().unwrap();
}
