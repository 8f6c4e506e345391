//! Token administration through Keywarden: C_InitToken, C_InitPIN, C_SetPIN.
mod common;
mod gateway_support;

use cryptoki::error::RvError;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::{Session, SessionState, UserType};
use gateway_support::code;

/// Logs in, checks the state, logs out: the PIN works.
fn assert_login(s: &Session, user: UserType, p: &str) {
    s.login(user, Some(&common::pin(p)))
        .unwrap_or_else(|e| panic!("login {user:?} {p}: {e}"));
    let want = if matches!(user, UserType::So) {
        SessionState::RwSecurityOfficer
    } else {
        SessionState::RwUser
    };
    assert_eq!(s.get_session_info().unwrap().session_state(), want);
    s.logout().unwrap();
}

#[test]
fn init_token_on_free_slot_then_init_pin() {
    let (_env, p11, test_slot) = common::keywarden_token();
    let initialised = p11.get_slots_with_initialized_token().unwrap();
    let free = *p11
        .get_all_slots()
        .unwrap()
        .iter()
        .find(|s| !initialised.contains(s))
        .expect("SoftHSM offers a free slot");
    assert!(!p11.get_token_info(free).unwrap().token_initialized());

    p11.init_token(free, &common::pin("87654321"), "second")
        .unwrap();
    let ti = p11.get_token_info(free).unwrap();
    assert_eq!(ti.label(), "second");
    assert!(ti.token_initialized() && !ti.user_pin_initialized());

    let s = p11.open_rw_session(free).unwrap();
    assert_eq!(
        code(s.login(UserType::User, Some(&common::pin("5555")))),
        RvError::UserPinNotInitialized
    );
    assert_eq!(
        code(s.login(UserType::So, Some(&common::pin(common::SO_PIN)))),
        RvError::PinIncorrect
    );
    s.login(UserType::So, Some(&common::pin("87654321")))
        .unwrap();
    s.init_pin(&common::pin("5555")).unwrap();
    s.logout().unwrap();
    assert!(p11.get_token_info(free).unwrap().user_pin_initialized());
    assert_login(&s, UserType::User, "5555");
    assert_eq!(
        code(s.login(UserType::User, Some(&common::pin(common::USER_PIN)))),
        RvError::PinIncorrect
    );

    // C_InitPIN needs the SO.
    s.login(UserType::User, Some(&common::pin("5555"))).unwrap();
    assert_eq!(
        code(s.init_pin(&common::pin("6666"))),
        RvError::UserNotLoggedIn
    );
    s.logout().unwrap();

    // The original token is untouched.
    assert_eq!(p11.get_token_info(test_slot).unwrap().label(), "test");
    let t = p11.open_rw_session(test_slot).unwrap();
    assert_login(&t, UserType::User, common::USER_PIN);
}

#[test]
fn set_pin_user_and_so() {
    let (_env, p11, slot) = common::keywarden_token();
    let s = p11.open_rw_session(slot).unwrap();

    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    assert_eq!(
        code(s.set_pin(&common::pin("0000"), &common::pin("4321"))),
        RvError::PinIncorrect
    );
    assert_eq!(
        code(s.set_pin(&common::pin(common::USER_PIN), &common::pin("12"))),
        RvError::PinLenRange
    );
    s.set_pin(&common::pin(common::USER_PIN), &common::pin("4321"))
        .unwrap();
    s.logout().unwrap();
    assert_eq!(
        code(s.login(UserType::User, Some(&common::pin(common::USER_PIN)))),
        RvError::PinIncorrect
    );
    assert_login(&s, UserType::User, "4321");

    s.login(UserType::So, Some(&common::pin(common::SO_PIN)))
        .unwrap();
    s.set_pin(&common::pin(common::SO_PIN), &common::pin("654321"))
        .unwrap();
    s.logout().unwrap();
    assert_eq!(
        code(s.login(UserType::So, Some(&common::pin(common::SO_PIN)))),
        RvError::PinIncorrect
    );
    assert_login(&s, UserType::So, "654321");

    // The SO can reset a user PIN with C_InitPIN.
    s.login(UserType::So, Some(&common::pin("654321"))).unwrap();
    s.init_pin(&common::pin("778899")).unwrap();
    s.logout().unwrap();
    assert_eq!(
        code(s.login(UserType::User, Some(&common::pin("4321")))),
        RvError::PinIncorrect
    );
    assert_login(&s, UserType::User, "778899");

    // C_SetPIN in a read-only session is refused.
    let ro = p11.open_ro_session(slot).unwrap();
    assert_eq!(
        code(ro.set_pin(&common::pin("778899"), &common::pin("1111"))),
        RvError::SessionReadOnly
    );
}

#[test]
fn reinit_existing_token() {
    let (_env, p11, slot) = common::keywarden_token();
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Label(b"old".to_vec()),
        Attribute::Value(b"gone after re-init".to_vec()),
    ])
    .unwrap();

    assert_eq!(
        code(p11.init_token(slot, &common::pin(common::SO_PIN), "renamed")),
        RvError::SessionExists
    );
    s.close().unwrap();
    assert_eq!(
        code(p11.init_token(slot, &common::pin("000000"), "renamed")),
        RvError::PinIncorrect
    );
    p11.init_token(slot, &common::pin(common::SO_PIN), "renamed")
        .unwrap();

    let ti = p11.get_token_info(slot).unwrap();
    assert_eq!(ti.label(), "renamed");
    assert!(!ti.user_pin_initialized());
    let s = p11.open_rw_session(slot).unwrap();
    assert!(s
        .find_objects(&[Attribute::Class(ObjectClass::DATA)])
        .unwrap()
        .is_empty());
    assert_eq!(
        code(s.login(UserType::User, Some(&common::pin(common::USER_PIN)))),
        RvError::UserPinNotInitialized
    );
    s.login(UserType::So, Some(&common::pin(common::SO_PIN)))
        .unwrap();
    s.init_pin(&common::pin("2468")).unwrap();
    s.logout().unwrap();
    assert_login(&s, UserType::User, "2468");
}
