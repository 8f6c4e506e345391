//! Slots, tokens, mechanisms, sessions and login through Keywarden (cryptoki client).
mod common;
#[macro_use]
mod gateway_support;

use cryptoki::error::RvError;
use cryptoki::mechanism::MechanismType;
use cryptoki::session::{SessionState, UserType};
use cryptoki::slot::Slot;
use gateway_support::code;

#[test]
fn library_slot_and_token_info() {
    let (_env, p11, slot) = common::keywarden_token();
    let info = p11.get_library_info().unwrap();
    assert_eq!(
        info.cryptoki_version().major(),
        2,
        "SoftHSM 2.6 speaks 2.40, passed through"
    );
    assert!(!info.manufacturer_id().is_empty());

    // SoftHSM always offers one free (uninitialised) slot besides the test token.
    let all = p11.get_all_slots().unwrap();
    let initialised = p11.get_slots_with_initialized_token().unwrap();
    assert!(all.len() >= 2, "{all:?}");
    assert!(initialised.contains(&slot));
    assert!(
        all.iter().any(|s| !initialised.contains(s)),
        "a free slot exists"
    );

    let si = p11.get_slot_info(slot).unwrap();
    assert!(si.token_present());
    assert!(
        si.manufacturer_id().contains("SoftHSM"),
        "{}",
        si.manufacturer_id()
    );

    let ti = p11.get_token_info(slot).unwrap();
    assert_eq!(ti.label(), "test");
    assert!(ti.token_initialized() && ti.user_pin_initialized() && ti.login_required());
    assert!(ti.rng());
    assert_eq!(ti.model(), "SoftHSM v2");
    assert!(ti.min_pin_length() <= 4 && ti.max_pin_length() >= 6);

    // A slot ID SoftHSM never assigned.
    let bogus = Slot::try_from(0x7777_7777u64).unwrap();
    assert_eq!(code(p11.get_token_info(bogus)), RvError::SlotIdInvalid);
    assert_eq!(code(p11.get_slot_info(bogus)), RvError::SlotIdInvalid);
}

#[test]
fn mechanism_list_and_info() {
    let (_env, p11, slot) = common::keywarden_token();
    let list = p11.get_mechanism_list(slot).unwrap();
    for m in [
        MechanismType::RSA_PKCS_KEY_PAIR_GEN,
        MechanismType::ECC_KEY_PAIR_GEN,
        MechanismType::AES_KEY_GEN,
        MechanismType::ECDSA,
        MechanismType::SHA256_RSA_PKCS,
        MechanismType::SHA256_RSA_PKCS_PSS,
        MechanismType::RSA_PKCS_OAEP,
        MechanismType::AES_CBC_PAD,
        MechanismType::AES_GCM,
        MechanismType::AES_KEY_WRAP,
        MechanismType::SHA256,
    ] {
        assert!(list.contains(&m), "{m} missing from {list:?}");
    }

    let rsa = p11
        .get_mechanism_info(slot, MechanismType::RSA_PKCS_KEY_PAIR_GEN)
        .unwrap();
    assert!(rsa.generate_key_pair() && !rsa.sign());
    assert!(
        rsa.min_key_size() <= 2048 && rsa.max_key_size() >= 4096,
        "{rsa:?}"
    );

    let gcm = p11
        .get_mechanism_info(slot, MechanismType::AES_GCM)
        .unwrap();
    assert!(gcm.encrypt() && gcm.decrypt() && !gcm.sign());

    let ecdsa = p11.get_mechanism_info(slot, MechanismType::ECDSA).unwrap();
    assert!(ecdsa.sign() && ecdsa.verify() && !ecdsa.encrypt());

    // Every listed mechanism has info; an unlisted one is CKR_MECHANISM_INVALID.
    for m in &list {
        p11.get_mechanism_info(slot, *m)
            .unwrap_or_else(|e| panic!("{m}: {e}"));
    }
    // SoftHSM 2.6.1 has no hashing ECDSA variants.
    assert!(!list.contains(&MechanismType::ECDSA_SHA256));
    assert_eq!(
        code(p11.get_mechanism_info(slot, MechanismType::ECDSA_SHA256)),
        RvError::MechanismInvalid
    );
    let vendor = MechanismType::new_vendor_defined(pkcs11_sys::CKM_VENDOR_DEFINED | 0x42).unwrap();
    assert!(!list.contains(&vendor));
    assert_eq!(
        code(p11.get_mechanism_info(slot, vendor)),
        RvError::MechanismInvalid
    );
}

#[test]
fn session_info_follows_login_state() {
    let (_env, p11, slot) = common::keywarden_token();
    let rw = p11.open_rw_session(slot).unwrap();
    let ro = p11.open_ro_session(slot).unwrap();
    assert_ne!(rw.handle(), ro.handle());

    let info = rw.get_session_info().unwrap();
    assert_eq!(info.slot_id(), slot);
    assert!(info.read_write());
    assert_eq!(info.session_state(), SessionState::RwPublic);
    let info = ro.get_session_info().unwrap();
    assert!(!info.read_write());
    assert_eq!(info.session_state(), SessionState::RoPublic);

    // Login is per application and token: both sessions change state.
    rw.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    assert_eq!(
        rw.get_session_info().unwrap().session_state(),
        SessionState::RwUser
    );
    assert_eq!(
        ro.get_session_info().unwrap().session_state(),
        SessionState::RoUser
    );

    rw.logout().unwrap();
    assert_eq!(
        ro.get_session_info().unwrap().session_state(),
        SessionState::RoPublic
    );

    // A closed session's handle is no longer valid (cryptoki consumes the Session on
    // close, so ask through the function list).
    let h = ro.handle();
    ro.close().unwrap();
    let raw = gateway_support::Raw::open(&common::keywarden_module());
    // SAFETY: plain data; all-zero is valid.
    let mut info: pkcs11_sys::CK_SESSION_INFO = unsafe { std::mem::zeroed() };
    let rv = raw!(raw, C_GetSessionInfo(h, &mut info));
    assert_eq!(
        rv,
        pkcs11_sys::CKR_SESSION_HANDLE_INVALID,
        "{}",
        gateway_support::name(rv)
    );
    assert_eq!(
        raw!(raw, C_GetSessionInfo(rw.handle(), &mut info)),
        pkcs11_sys::CKR_OK
    );
    assert_eq!(info.state, pkcs11_sys::CKS_RW_PUBLIC_SESSION);
}

#[test]
fn login_wrong_pin_and_logout() {
    let (_env, p11, slot) = common::keywarden_token();
    let s = p11.open_rw_session(slot).unwrap();

    assert_eq!(
        code(s.login(UserType::User, Some(&common::pin("9999")))),
        RvError::PinIncorrect
    );
    assert_eq!(
        s.get_session_info().unwrap().session_state(),
        SessionState::RwPublic
    );
    // SoftHSM answers C_Logout without a login with CKR_OK (the specification says
    // CKR_USER_NOT_LOGGED_IN); Keywarden passes that through (see gateway_errors.rs).
    s.logout().unwrap();

    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    assert_eq!(
        code(s.login(UserType::User, Some(&common::pin(common::USER_PIN)))),
        RvError::UserAlreadyLoggedIn
    );
    // The SO cannot log in while the user is.
    assert_eq!(
        code(s.login(UserType::So, Some(&common::pin(common::SO_PIN)))),
        RvError::UserAnotherAlreadyLoggedIn
    );
    s.logout().unwrap();
    assert_eq!(
        s.get_session_info().unwrap().session_state(),
        SessionState::RwPublic
    );

    // SO login works on a R/W session, and its wrong PIN is refused as well.
    assert_eq!(
        code(s.login(UserType::So, Some(&common::pin("000000")))),
        RvError::PinIncorrect
    );
    s.login(UserType::So, Some(&common::pin(common::SO_PIN)))
        .unwrap();
    assert_eq!(
        s.get_session_info().unwrap().session_state(),
        SessionState::RwSecurityOfficer
    );
    s.logout().unwrap();

    // After a successful login the token's counters are clear again.
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    let ti = p11.get_token_info(slot).unwrap();
    assert!(!ti.user_pin_locked() && !ti.user_pin_final_try());
}

#[test]
fn close_all_sessions_invalidates_them() {
    let (_env, p11, slot) = common::keywarden_token();
    let a = p11.open_rw_session(slot).unwrap();
    let b = p11.open_ro_session(slot).unwrap();
    a.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    // cryptoki has no C_CloseAllSessions; call it through the function list.
    let raw = gateway_support::Raw::open(&common::keywarden_module());
    assert_eq!(raw!(raw, C_CloseAllSessions(slot.id())), pkcs11_sys::CKR_OK);
    assert_eq!(code(a.get_session_info()), RvError::SessionHandleInvalid);
    assert_eq!(code(b.get_session_info()), RvError::SessionHandleInvalid);
    // Closing the last session logs the user out.
    let c = p11.open_ro_session(slot).unwrap();
    assert_eq!(
        c.get_session_info().unwrap().session_state(),
        SessionState::RoPublic
    );
}
