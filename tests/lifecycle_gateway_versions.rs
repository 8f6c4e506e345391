//! A managed key's objects cannot leave its version, and no other object can join
//! one, through the cdylib in enforce mode (src/gateway/versions.rs): re-IDs,
//! re-labels and copies of a compromised key, and keys created, generated or
//! edited to carry a managed key's `CKA_ID`, with `unmanaged_keys = "allow"` (the
//! setting under which an escaped object would sign). Checked with cryptoki and with
//! pkcs11-tool and p11tool.
mod common;
mod lifecycle_support;

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::Session;
use lifecycle_support::*;

const LABEL: &str = "app-sign";
const ID1: &[u8] = &[0xa1];
const PRIVATE: ObjectClass = ObjectClass::PRIVATE_KEY;
const PUBLIC: ObjectClass = ObjectClass::PUBLIC_KEY;

/// `LABEL` adopted (CKA_ID a1) and then marked compromised, under a policy that
/// allows everything and leaves `unmanaged_keys` at "allow".
fn compromised() -> Lc {
    let lc = Lc::new(&policy("unmanaged_keys = \"allow\"", ""));
    lc.direct(|s| generate(s, LABEL, Some(ID1)));
    lc.ok(&["adopt", LABEL]);
    lc.ok(&["compromise", "--reason", "leaked", LABEL]);
    lc
}

/// Runs `f` in a logged-in session through Keywarden, then finalises.
fn through_keywarden<T>(f: impl FnOnce(&Session) -> T) -> T {
    let p11 = common::load(&common::keywarden_module());
    let out = f(&user_session(&p11));
    p11.finalize().unwrap();
    out
}

fn refused<T: std::fmt::Debug>(r: cryptoki::error::Result<T>) -> RvError {
    rv(r.expect_err("refused"))
}

#[test]
fn re_iding_a_compromised_key_with_set_attribute_does_not_make_it_sign_again() {
    let _lc = compromised();
    through_keywarden(|s| {
        let key = one(by_id(s, ID1, PRIVATE));
        assert_eq!(sign(s, key), Err(RvError::KeyFunctionNotPermitted));
        let edit = s.update_attributes(key, &[Attribute::Id(vec![0x77])]);
        assert_eq!(refused(edit), RvError::ActionProhibited);
        let relabel = s.update_attributes(key, &[Attribute::Label(b"other".to_vec())]);
        assert_eq!(refused(relabel), RvError::ActionProhibited);
        // Nothing changed: the key is still the compromised version, and refused.
        assert_eq!(attr_bytes(s, key, AttributeType::Id), ID1);
        assert_eq!(attr_bytes(s, key, AttributeType::Label), LABEL.as_bytes());
        assert_eq!(sign(s, key), Err(RvError::KeyFunctionNotPermitted));
        // Setting the values it already has is no change, and allowed.
        s.update_attributes(key, &[Attribute::Id(ID1.to_vec())])
            .unwrap();
    });
}

#[test]
fn copying_a_compromised_key_with_a_new_id_or_label_is_refused_and_a_plain_copy_stays_compromised()
{
    let _lc = compromised();
    through_keywarden(|s| {
        let key = one(by_id(s, ID1, PRIVATE));
        let copy = s.copy_object(key, &[Attribute::Id(vec![0x77])]);
        assert_eq!(refused(copy), RvError::ActionProhibited);
        let copy = s.copy_object(key, &[Attribute::Label(b"escaped".to_vec())]);
        assert_eq!(refused(copy), RvError::ActionProhibited);
        assert!(by_id(s, &[0x77], PRIVATE).is_empty());
        // A copy that keeps the CKA_ID is one more object of the same version:
        // compromised like it, as a token or a session object.
        for token in [true, false] {
            let copy = s.copy_object(key, &[Attribute::Token(token)]).unwrap();
            assert_eq!(attr_bytes(s, copy, AttributeType::Id), ID1);
            assert_eq!(sign(s, copy), Err(RvError::KeyFunctionNotPermitted));
            s.destroy_object(copy).unwrap();
        }
    });
}

#[test]
fn a_new_or_edited_key_cannot_forge_a_version_by_taking_a_managed_cka_id() {
    let lc = compromised();
    // An unmanaged key to edit, made on SoftHSM directly.
    lc.direct(|s| generate(s, "spare", Some(&[0x55])));
    through_keywarden(|s| {
        // A key pair generated with the managed CKA_ID and label.
        let (public, private) = (
            vec![
                Attribute::Token(true),
                Attribute::Label(LABEL.into()),
                Attribute::Id(ID1.to_vec()),
                Attribute::EcParams(P256.to_vec()),
                Attribute::Verify(true),
            ],
            vec![
                Attribute::Token(true),
                Attribute::Label(LABEL.into()),
                Attribute::Id(ID1.to_vec()),
                Attribute::Sign(true),
            ],
        );
        let generated = s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private);
        assert_eq!(refused(generated), RvError::TemplateInconsistent);
        let other_id = |t: &[Attribute]| -> Vec<Attribute> {
            t.iter()
                .map(|a| match a {
                    Attribute::Id(_) => Attribute::Id(vec![0x98]),
                    other => other.clone(),
                })
                .collect()
        };
        s.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &other_id(&public),
            &other_id(&private),
        )
        .unwrap();
        // An imported secret key with the managed CKA_ID.
        let aes = |id: &[u8]| {
            vec![
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(true),
                Attribute::Id(id.to_vec()),
                Attribute::Label(LABEL.into()),
                Attribute::Value(vec![9u8; 32]),
                Attribute::Encrypt(true),
            ]
        };
        assert_eq!(
            refused(s.create_object(&aes(ID1))),
            RvError::TemplateInconsistent
        );
        // The same import with an unused CKA_ID is allowed: the ID was the reason.
        s.create_object(&aes(&[0x99])).unwrap();
        // Another (unmanaged) key edited or copied to take the managed CKA_ID.
        let spare = one(by_id(s, &[0x55], PRIVATE));
        let edit = s.update_attributes(spare, &[Attribute::Id(ID1.to_vec())]);
        assert_eq!(refused(edit), RvError::ActionProhibited);
        let copy = s.copy_object(spare, &[Attribute::Id(ID1.to_vec())]);
        assert_eq!(refused(copy), RvError::ActionProhibited);
        // Only the adopted pair holds a1.
        assert_eq!(by_id(s, ID1, PRIVATE).len(), 1);
        assert_eq!(by_id(s, ID1, PUBLIC).len(), 1);
        // The unmanaged key itself is free to be re-IDed to an unused CKA_ID.
        s.update_attributes(spare, &[Attribute::Id(vec![0x56])])
            .unwrap();
    });
}

fn tool(lc: &Lc, program: &str, args: &[&str]) -> std::process::Output {
    lc.env.command(program).args(args).output().unwrap()
}

#[test]
fn pkcs11_tool_set_id_and_p11tool_set_label_cannot_take_a_compromised_key_out_of_its_version() {
    let lc = compromised();
    let module = common::keywarden_module();
    let module = module.to_str().unwrap();
    let out = tool(
        &lc,
        "pkcs11-tool",
        &[
            "--module",
            module,
            "--token-label",
            common::TOKEN_LABEL,
            "--login",
            "--pin",
            common::USER_PIN,
            "--type",
            "privkey",
            "--id",
            "a1",
            "--set-id",
            "77",
        ],
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    // CKR_ACTION_PROHIBITED, which this pkcs11-tool prints by number.
    assert!(said.contains("(0x1b)"), "{said}");
    let pin = format!("--set-pin={}", common::USER_PIN);
    let uri = format!(
        "pkcs11:token={};object={LABEL};type=private",
        common::TOKEN_LABEL
    );
    let out = tool(
        &lc,
        "p11tool",
        &[
            "--provider",
            module,
            "--login",
            &pin,
            "--set-label",
            "escaped",
            &uri,
        ],
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    // On SoftHSM directly: the key kept its CKA_ID and label.
    lc.direct(|s| {
        let key = one(by_id(s, ID1, PRIVATE));
        assert_eq!(attr_bytes(s, key, AttributeType::Label), LABEL.as_bytes());
        assert!(by_id(s, &[0x77], PRIVATE).is_empty());
    });
    through_keywarden(|s| {
        let key = one(by_id(s, ID1, PRIVATE));
        assert_eq!(sign(s, key), Err(RvError::KeyFunctionNotPermitted));
    });
}
