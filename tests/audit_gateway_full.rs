//! `required` mode on a full disk, through libkeywarden.so on SoftHSM: a call
//! whose record cannot be written is refused with `CKR_DEVICE_MEMORY` and takes
//! no effect the application could see later (a refused `C_OpenSession` leaves no
//! session), `C_Finalize` included; writing resumes when there is room again.
//! The disk is filled exactly (`audit_support::fill`) and then, since the trail's
//! last page or folio may still take records, calls are made until one is refused.
mod audit_support;
mod common;
#[macro_use]
mod gateway_support;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectClass;
use cryptoki::session::{Session, UserType};
use gateway_support::code;

/// A token with a signing key `k` and the trail in `required` mode on a 256 KiB
/// tmpfs (unmounted when the guard is dropped).
fn full_disk_setup() -> (tempfile::TempDir, audit_support::Tmpfs, common::TestEnv) {
    let Some((guard, fs)) = audit_support::Tmpfs::mount("256k") else {
        panic!("this test needs to mount a tmpfs (run as root, as CI does)");
    };
    let env = common::token_with_signing_key("k");
    env.require_audit();
    let dir = fs.0.join("audit");
    let conf = std::fs::read_to_string(&env.keywarden_conf).unwrap();
    let old = format!("\"{}\"", env.path().join("audit").display());
    assert!(conf.contains(&old), "{conf}");
    let conf = conf.replacen(&old, &format!("\"{}\"", dir.display()), 1);
    std::fs::write(&env.keywarden_conf, conf).unwrap();
    (guard, fs, env)
}

#[test]
fn a_refused_open_session_leaves_no_session_behind() {
    let (_guard, fs, _env) = full_disk_setup();
    // A refused C_OpenSession leaves no session behind: once the application has
    // closed every session it was given, the token's login state ends (§5.6) —
    // a session left open by the refused call would keep it logged in.
    let p11 = common::load(&common::keywarden_module());
    let slot = common::test_slot(&p11);
    let s = p11.open_ro_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    let mut sessions = vec![s];
    let filler = fill_until_an_open_is_refused(&fs.0, &p11, slot, &mut sessions);
    std::fs::remove_file(filler).unwrap();
    drop(sessions);
    let fresh = p11.open_ro_session(slot).unwrap();
    assert_eq!(
        fresh.get_session_info().unwrap().session_state(),
        cryptoki::session::SessionState::RoPublic
    );
    drop(fresh);
    p11.finalize().unwrap();
}

#[test]
fn required_mode_refuses_operations_while_the_trail_is_full_and_resumes() {
    let (_guard, fs, _env) = full_disk_setup();
    let dir = fs.0.join("audit");

    let p11 = common::load(&common::keywarden_module());
    let s = p11.open_rw_session(common::test_slot(&p11)).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    let key = common::find_one(&s, ObjectClass::PRIVATE_KEY, "k");
    s.sign(&Mechanism::Ecdsa, key, &[1u8; 32]).unwrap();

    let filler = audit_support::fill(&fs.0);
    let mut refused = 0;
    for _ in 0..20 {
        match s.sign(&Mechanism::Ecdsa, key, &[1u8; 32]) {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(
                    code(Err::<(), _>(e)),
                    cryptoki::error::RvError::DeviceMemory
                );
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "the trail never filled up");

    std::fs::remove_file(filler).unwrap();
    s.sign(&Mechanism::Ecdsa, key, &[1u8; 32]).unwrap();
    drop(s);
    p11.finalize().unwrap();
    let r = keywarden::audit::verify(&dir, None, None, None).unwrap();
    assert!(r.is_intact() && r.truncated_tail.is_none(), "{r}");

    // C_Finalize's own records are held to the same rule: on a full disk it fails
    // with the disk-full code (the module is finalised all the same).
    let p11 = common::load(&common::keywarden_module());
    let slot = common::test_slot(&p11);
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    let key = common::find_one(&s, ObjectClass::PRIVATE_KEY, "k");
    // An operation under way: C_Finalize ends it with a record (mechanism, key,
    // session) larger than any C_OpenSession record.
    s.sign_init(&Mechanism::Ecdsa, key).unwrap();
    let before = opened_records(&dir);
    let mut sessions = Vec::new();
    // The trail file's last page (or folio) may still take some records: open
    // sessions until one's record does not fit. What is left is then smaller
    // than a C_OpenSession record, so C_Finalize's first record cannot fit.
    let filler = fill_until_an_open_is_refused(&fs.0, &p11, slot, &mut sessions);
    let opened = sessions.len();
    std::mem::forget(sessions);
    assert_eq!(code(p11.finalize()), cryptoki::error::RvError::DeviceMemory);
    std::mem::forget(s);
    std::fs::remove_file(filler).unwrap();
    let p11 = common::load(&common::keywarden_module());
    p11.finalize().unwrap();
    let r = keywarden::audit::verify(&dir, None, None, None).unwrap();
    assert!(r.is_intact() && r.truncated_tail.is_none(), "{r}");
    // The refused C_OpenSession's record never reached the trail, later either.
    assert_eq!(
        opened_records(&dir) - before,
        opened,
        "one record per session the application got"
    );
}

/// Fills the file system, then opens sessions (kept in `sessions`) until one is
/// refused for want of room for its record; returns the filler.
fn fill_until_an_open_is_refused(
    fs: &std::path::Path,
    p11: &cryptoki::context::Pkcs11,
    slot: cryptoki::slot::Slot,
    sessions: &mut Vec<Session>,
) -> std::path::PathBuf {
    let filler = audit_support::fill(fs);
    let refused = (0..10_000).find_map(|_| match p11.open_ro_session(slot) {
        Ok(s) => {
            sessions.push(s);
            None
        }
        Err(e) => Some(code(Err::<(), _>(e))),
    });
    assert_eq!(refused, Some(cryptoki::error::RvError::DeviceMemory));
    filler
}

/// The `C_OpenSession` records of the trail in `dir`.
fn opened_records(dir: &std::path::Path) -> usize {
    keywarden::audit::list_files(dir)
        .unwrap()
        .iter()
        .flat_map(|f| audit_support::lines(f))
        .filter(|l| l.contains("\"function\":\"C_OpenSession\""))
        .count()
}
