//! Transparent mode's lifecycle guard: no policy, but a compromised managed key
//! is refused before the token sees it, with the lifecycle's rule.

use pkcs11_sys::*;

use super::{rv, Env};
use crate::audit::Decision;
use crate::backend::double::{SLOT, TOKEN_SERIAL};
use crate::functions::FunctionId as F;
use crate::store::{now, KeyState, NewKey, NewVersion, SqliteStore, Store};

/// Registers `label` with one version on the double's token under `id`, then
/// moves that version to `state`.
fn managed(store: &SqliteStore, label: &str, id: &[u8], state: KeyState) {
    let at = now();
    let key = store
        .create_key(
            &NewKey {
                label: label.to_owned(),
                owner: None,
                classification: None,
                rotation_rule: None,
            },
            at,
        )
        .unwrap();
    let new = NewVersion {
        token_serial: TOKEN_SERIAL.to_owned(),
        cka_id: id.to_vec(),
        algorithm: "CKK_EC".to_owned(),
        size_bits: None,
        curve: Some("P-256".to_owned()),
    };
    let v = store
        .add_version(key.id, &new, KeyState::Active, at)
        .unwrap();
    if state != KeyState::Active {
        store.set_state(v.id, state, Some("test"), at).unwrap();
    }
}

#[test]
fn a_compromised_key_is_refused_in_transparent_mode_and_recorded() {
    let env = Env::transparent_over(|store| {
        managed(store, "app-sign", b"\xa1", KeyState::Compromised);
        managed(store, "fine", b"\xa2", KeyState::Active);
    });
    let bad = env.double.add_signing_key("app-sign", b"\xa1");
    let good = env.double.add_signing_key("fine", b"\xa2");
    let unmanaged = env.double.add_signing_key("legacy", b"\xb2");
    let s = env.user_session();
    assert_eq!(
        rv(env.sign_init(s, CKM_ECDSA, bad)),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    assert_eq!(env.double.key_uses(bad), 0);
    let ops = env.ops();
    let refused = ops.last().unwrap();
    assert_eq!(refused.function.as_deref(), Some("C_SignInit"));
    assert_eq!(refused.decision, Some(Decision::Deny));
    assert_eq!(refused.rule.as_deref(), Some("lifecycle.state"));
    assert_eq!(refused.key_label.as_deref(), Some("app-sign"));
    assert_eq!(
        refused.rv.as_deref(),
        Some("CKR_KEY_FUNCTION_NOT_PERMITTED")
    );
    // An active managed key and an unmanaged one are forwarded.
    env.sign_init(s, CKM_ECDSA, good).unwrap();
    let mut sig = [0u8; 64];
    env.sign(s, b"m", Some(&mut sig)).0.unwrap();
    env.sign_init(s, CKM_ECDSA, unmanaged).unwrap();
    assert_eq!(
        (env.double.key_uses(good), env.double.key_uses(unmanaged)),
        (1, 1)
    );
}

#[test]
fn a_token_serial_that_cannot_be_read_refuses_a_managed_key_use_until_it_can() {
    let env = Env::transparent_over(|store| {
        managed(store, "fine", b"\xa2", KeyState::Active);
    });
    let key = env.double.add_signing_key("fine", b"\xa2");
    // Every read of the serial fails for a while (the session table and the
    // audit records read it too).
    for _ in 0..8 {
        env.double.fail_next(F::C_GetTokenInfo, CKR_DEVICE_ERROR);
    }
    let s = env.user_session();
    assert_eq!(rv(env.sign_init(s, CKM_ECDSA, key)), CKR_DEVICE_ERROR);
    assert_eq!(env.double.key_uses(key), 0);
    let ops = env.ops();
    let refused = ops.last().unwrap();
    assert_eq!(refused.decision, Some(Decision::Deny));
    assert_eq!(refused.rule.as_deref(), Some("lifecycle.token"));
    assert_eq!(refused.function.as_deref(), Some("C_SignInit"));
    assert_eq!(refused.rv.as_deref(), Some("CKR_DEVICE_ERROR"));
    // Nothing was kept of the failure: once the token answers, the serial is
    // read and the key used.
    let token: &dyn crate::backend::Backend = &*env.double;
    while token.token_serial(SLOT).is_err() {}
    env.sign_init(s, CKM_ECDSA, key).unwrap();
    assert_eq!(env.double.key_uses(key), 1);
}
