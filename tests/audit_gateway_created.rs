//! Records of object-creating calls name the new key (`new_key_label`,
//! `new_key_id`, `new_key_version`), and the module's own lifecycle changes —
//! auto-registration and automatic rotation — are `lifecycle` records
//! (docs/audit.md, "What the module records"). Through the cdylib on SoftHSM, in
//! transparent and enforce mode; `audit search --key` finds a key's creation, and
//! `audit verify` accepts the trail.
mod audit_support;
mod common;
mod lifecycle_support;

use cryptoki::mechanism::ekdf::AesCbcDeriveParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::UserType;
use lifecycle_support::*;
use serde_json::Value;

/// Every record of the trail but seals, in order.
fn trail(env: &common::TestEnv) -> Vec<Value> {
    env.trail_records()
        .into_iter()
        .filter(|v| v["kind"] != "seal")
        .collect()
}

/// The one op record of `function`.
fn op<'a>(records: &'a [Value], function: &str) -> &'a Value {
    let found: Vec<_> = records
        .iter()
        .filter(|r| r["kind"] == "op" && r["function"] == function)
        .collect();
    assert_eq!(found.len(), 1, "{function}: {found:?}");
    found[0]
}

fn keywarden(env: &common::TestEnv, args: &[&str]) -> String {
    env.cli(args)
}

/// `audit search --key` as parsed records.
fn search_key(env: &common::TestEnv, key: &str) -> Vec<Value> {
    keywarden(env, &["audit", "search", "--key", key, "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Asserts what a record says about the new key (None: the field is absent).
fn assert_new(r: &Value, label: Option<&str>, id: Option<&str>, version: Option<u64>) {
    let get = |f: &str| r.as_object().unwrap().get(f).cloned();
    assert_eq!(get("new_key_label"), label.map(Value::from), "{r}");
    assert_eq!(get("new_key_id"), id.map(Value::from), "{r}");
    assert_eq!(get("new_key_version"), version.map(Value::from), "{r}");
}

#[test]
fn transparent_mode_names_the_key_each_creating_call_made() {
    let env = common::TestEnv::new();
    let p11 = common::load(&common::keywarden_module());
    let s = p11.open_rw_session(common::test_slot(&p11)).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    let aes_template = |label: &str, id: u8| {
        vec![
            Attribute::Token(false),
            Attribute::ValueLen(32.into()),
            Attribute::Encrypt(true),
            Attribute::Extractable(true),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Derive(true),
            Attribute::Label(label.into()),
            Attribute::Id(vec![id]),
        ]
    };
    let aes = s
        .generate_key(&Mechanism::AesKeyGen, &aes_template("aes-new", 0x0a))
        .unwrap();
    let kek = s
        .generate_key(&Mechanism::AesKeyGen, &aes_template("kek", 0x0b))
        .unwrap();
    s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::Token(false),
            Attribute::EcParams(P256.to_vec()),
            Attribute::Label(b"ec-pub".to_vec()),
            Attribute::Id(vec![0xec, 0x00]),
        ],
        &[
            Attribute::Token(false),
            Attribute::Sign(true),
            Attribute::Label(b"ec-priv".to_vec()),
            Attribute::Id(vec![0xec, 0x01]),
        ],
    )
    .unwrap();
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Value(vec![1u8; 32]),
        Attribute::Label(b"imported".to_vec()),
        Attribute::Id(vec![0x1b]),
    ])
    .unwrap();
    s.copy_object(aes, &[Attribute::Label(b"aes-copy".to_vec())])
        .unwrap();
    let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, kek, aes).unwrap();
    let secret = |label: &str| {
        vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Encrypt(true),
            Attribute::Label(label.into()),
        ]
    };
    s.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &secret("unwrapped"))
        .unwrap();
    let data = [7u8; 32];
    let derive = Mechanism::AesCbcEncryptData(AesCbcDeriveParams::new([0u8; 16], &data));
    let mut derived_template = secret("derived");
    derived_template.push(Attribute::ValueLen(32.into()));
    s.derive_key(&derive, aes, &derived_template).unwrap();
    // A failed creation names nothing new.
    assert!(s
        .generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(3.into())])
        .is_err());
    drop(s);
    p11.finalize().unwrap();

    let records = trail(&env);
    let generated: Vec<_> = records
        .iter()
        .filter(|r| r["function"] == "C_GenerateKey")
        .collect();
    assert_eq!(generated.len(), 3, "{generated:?}");
    // No source key; the new key, with no managed version in transparent mode.
    assert_eq!(generated[0]["key_label"], Value::Null);
    assert_new(generated[0], Some("aes-new"), Some("0a"), None);
    assert_new(generated[1], Some("kek"), Some("0b"), None);
    assert_ne!(generated[2]["rv"], "CKR_OK");
    assert_new(generated[2], None, None, None);
    // A key pair's record names the private key.
    assert_new(
        op(&records, "C_GenerateKeyPair"),
        Some("ec-priv"),
        Some("ec01"),
        None,
    );
    assert_new(
        op(&records, "C_CreateObject"),
        Some("imported"),
        Some("1b"),
        None,
    );
    // Copy, unwrap, derive: `key_*` is the source, `new_key_*` the new key.
    let copy = op(&records, "C_CopyObject");
    assert_eq!(copy["key_label"], "aes-new", "{copy}");
    assert_new(copy, Some("aes-copy"), Some("0a"), None);
    let unwrap = op(&records, "C_UnwrapKey");
    assert_eq!(unwrap["key_label"], "kek", "{unwrap}");
    // SoftHSM gives a key created without one an empty CKA_ID.
    assert_new(unwrap, Some("unwrapped"), Some(""), None);
    let derived = op(&records, "C_DeriveKey");
    assert_eq!(derived["key_label"], "aes-new", "{derived}");
    assert_new(derived, Some("derived"), Some(""), None);
    // Other records carry no new_key fields at all.
    let wrap = op(&records, "C_WrapKey");
    assert_new(wrap, None, None, None);

    // Searching for a key finds its creation.
    let found = search_key(&env, "imported");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["function"], "C_CreateObject");
    let found = search_key(&env, "aes-copy");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["function"], "C_CopyObject");
    let text = keywarden(&env, &["audit", "search", "--key", "unwrapped"]);
    assert!(text.contains("key=kek id=0b new=unwrapped "), "{text}");
    keywarden(&env, &["audit", "verify"]);
}

#[test]
fn enforce_mode_names_the_registered_version_and_records_the_registration() {
    let lc = Lc::new(&policy("", ""));
    let p11 = common::load(&common::keywarden_module());
    let s = user_session(&p11);
    let (_, private) = generate(&s, "app-reg", None);
    let id = attr_bytes(&s, private, AttributeType::Id);
    // A session key is not registered: named, with no version, no lifecycle record.
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::Token(false),
            Attribute::ValueLen(16.into()),
            Attribute::Label(b"app-temp".to_vec()),
        ],
    )
    .unwrap();
    drop(s);
    p11.finalize().unwrap();

    let records = trail(&lc.env);
    let pair = op(&records, "C_GenerateKeyPair");
    assert_new(pair, Some("app-reg"), Some(&hex(&id)), Some(1));
    assert_new(
        op(&records, "C_GenerateKey"),
        Some("app-temp"),
        Some(""),
        None,
    );
    let lifecycle: Vec<_> = records
        .iter()
        .filter(|r| r["kind"] == "lifecycle")
        .collect();
    assert_eq!(lifecycle.len(), 1, "{lifecycle:?}");
    let reg = lifecycle[0];
    assert_eq!(reg["action"], "register", "{reg}");
    assert_eq!(reg["key_label"], "app-reg", "{reg}");
    assert_eq!(reg["key_id"], hex(&id), "{reg}");
    assert_eq!(reg["key_version"], 1, "{reg}");
    assert_eq!(reg["from_state"], Value::Null, "{reg}");
    assert_eq!(reg["to_state"], "active", "{reg}");
    assert_eq!(reg["outcome"], "ok", "{reg}");
    // No named identity: the OS user, as the CLI names itself.
    assert_eq!(reg["actor"], reg["user"], "{reg}");
    assert!(reg["actor"].is_string(), "{reg}");
    // The registration comes before the call's own record (made at its end).
    let pos = |r: &Value| records.iter().position(|x| x == r).unwrap();
    assert!(pos(reg) < pos(pair));

    // `audit search --key` finds the creation and the registration, by label
    // and by CKA_ID.
    for key in ["app-reg".to_owned(), hex(&id)] {
        let found = search_key(&lc.env, &key);
        let kinds: Vec<_> = found
            .iter()
            .map(|r| (r["kind"].clone(), r["function"].clone()))
            .collect();
        assert_eq!(found.len(), 2, "{key}: {kinds:?}");
        assert_eq!(found[0]["action"], "register");
        assert_eq!(found[1]["function"], "C_GenerateKeyPair");
    }
    keywarden(&lc.env, &["audit", "verify"]);
}

#[test]
fn an_automatic_rotation_is_recorded_with_the_caller_as_actor() {
    let lc = Lc::new(&policy("", ROTATE_WHEN_DUE));
    lc.env.clock_override(true);
    lc.direct(|s| generate(s, "app-auto", Some(&[0xe1])));
    lc.ok(&["adopt", "app-auto"]);
    let later = keywarden::store::now() + 100 * 86_400;
    std::env::set_var("KEYWARDEN_NOW", later.to_string());
    let p11 = common::load(&common::keywarden_module());
    let s = user_session(&p11);
    let old = one(by_label(&s, "app-auto", ObjectClass::PRIVATE_KEY));
    sign(&s, old).unwrap();
    drop(s);
    p11.finalize().unwrap();

    let vs = lc.versions("app-auto");
    assert_eq!(vs.len(), 2, "{vs:?}");
    let new_id = vs[1]["cka_id"].as_str().unwrap().to_owned();
    let records = trail(&lc.env);
    let module: Vec<_> = records
        .iter()
        .filter(|r| r["kind"] == "lifecycle" && r["pid"] == std::process::id())
        .collect();
    assert_eq!(module.len(), 2, "{module:?}");
    let (rotate, deactivate) = (module[0], module[1]);
    assert_eq!(rotate["action"], "rotate", "{rotate}");
    assert_eq!(rotate["key_label"], "app-auto");
    assert_eq!(rotate["key_id"], new_id.as_str());
    assert_eq!(rotate["key_version"], 2);
    assert_eq!(rotate["to_state"], "active");
    assert_eq!(rotate["outcome"], "ok");
    assert!(
        rotate["detail"].as_str().unwrap().contains("automatic"),
        "{rotate}"
    );
    assert_eq!(rotate["actor"], rotate["user"], "{rotate}");
    assert_eq!(deactivate["action"], "deactivate", "{deactivate}");
    assert_eq!(deactivate["key_id"], "e1");
    assert_eq!(deactivate["key_version"], 1);
    assert_eq!(deactivate["from_state"], "active");
    assert_eq!(deactivate["to_state"], "deactivated");
    // The sign that triggered it is recorded after, naming the version it used.
    let signed = op(&records, "C_Sign");
    assert_eq!(signed["key_version"], 1, "{signed}");
    let pos = |r: &Value| records.iter().position(|x| x == r).unwrap();
    assert!(pos(deactivate) < pos(signed));
    keywarden(&lc.env, &["audit", "verify"]);
}

/// `required` mode, the trail on a full file system: a registration whose record
/// cannot be written fails the call (`CKR_DEVICE_MEMORY`); the key stays registered
/// (the change is made, as with the CLI), and once there is room the module goes on
/// and the trail verifies.
#[test]
fn required_mode_fails_a_registration_whose_record_cannot_be_written() {
    let Some((_guard, fs)) = audit_support::Tmpfs::mount("256k") else {
        panic!("this test needs to mount a tmpfs (run as root, as CI does)");
    };
    let lc = Lc::new(&policy("", ""));
    let dir = fs.0.join("audit");
    // The trail moves (the store records its changes in this chain).
    audit_support::copy_trail(&lc.env.path().join("audit"), &dir);
    let conf = std::fs::read_to_string(&lc.env.keywarden_conf).unwrap();
    let old = format!("\"{}\"", lc.env.path().join("audit").display());
    assert!(conf.contains(&old), "{conf}");
    let conf = conf
        .replacen(&old, &format!("\"{}\"", dir.display()), 1)
        .replacen("# mode = \"buffered\"", "mode = \"required\"", 1);
    assert!(conf.contains("mode = \"required\""), "{conf}");
    std::fs::write(&lc.env.keywarden_conf, conf).unwrap();

    let p11 = common::load(&common::keywarden_module());
    let s = user_session(&p11);
    let filler = audit_support::fill(&fs.0);
    // The trail's last page may still hold a few records: generate registered keys
    // until one's records no longer fit.
    let mut failed = None;
    for n in 0..200 {
        let label = format!("app-full-{n}");
        let public = [
            Attribute::Token(true),
            Attribute::Label(label.clone().into()),
            Attribute::EcParams(P256.to_vec()),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Label(label.clone().into()),
            Attribute::Sign(true),
        ];
        match s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private) {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(rv(e), cryptoki::error::RvError::DeviceMemory);
                failed = Some(label);
                break;
            }
        }
    }
    let label = failed.expect("the trail never filled up");
    std::fs::remove_file(filler).unwrap();
    // Registered all the same: it is managed and signs.
    assert_eq!(lc.versions(&label).len(), 1);
    sign(&s, one(by_label(&s, &label, ObjectClass::PRIVATE_KEY))).unwrap();
    drop(s);
    p11.finalize().unwrap();
    let r = keywarden::audit::verify(&dir, None, None, None).unwrap();
    assert!(r.is_intact() && r.truncated_tail.is_none(), "{r}");
}
