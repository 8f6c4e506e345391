//! Transparency: one scenario runs on SoftHSM directly and then through Keywarden, in one
//! process, and the two transcripts must be identical once run-specific names are
//! normalised.
//!
//! SoftHSM keeps one instance per process, so both runs see the same token. SoftHSM is
//! initialised first and Keywarden then accepts CKR_CRYPTOKI_ALREADY_INITIALIZED from it.
//! Each run labels its objects with its own tag (recorded as `<run>`), uses session
//! objects where it can, and leaves the token logged out with no sessions, so the second
//! run starts from the state the first one did. Keys whose outputs are compared byte for
//! byte (deterministic RSA PKCS#1 signatures, AES-CBC, AES-GCM with a fixed IV, AES key
//! wrap) are created once, before both runs, and found by label.
mod common;
#[macro_use]
mod gateway_support;
mod transparency_support;

use std::path::Path;

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use gateway_support::{attr, hex, name, Raw};
use pkcs11_sys::*;

use common::P256;
use transparency_support::{
    find_one, key_facts, make_shared_keys, raw_sign, show, Transcript, IV, MSG,
};

fn scenario(p11: &Pkcs11, raw: &Raw, tag: &str) -> Vec<String> {
    use AttributeType as A;
    use Mechanism as M;
    let t = &mut Transcript {
        tag: tag.to_string(),
        lines: Vec::new(),
    };
    let lbl = |what: &str| Attribute::Label(format!("{tag}-{what}").into_bytes());
    let id = Attribute::Id(tag.as_bytes().to_vec());

    // Library, slots, tokens, mechanisms.
    t.dbg("C_GetInfo", p11.get_library_info());
    let all = t.dbg("all slots", p11.get_all_slots()).unwrap();
    t.dbg("slots with token", p11.get_slots_with_token());
    for s in &all {
        t.dbg("C_GetSlotInfo", p11.get_slot_info(*s));
        t.dbg("C_GetTokenInfo", p11.get_token_info(*s));
    }
    let slot = common::test_slot(p11);
    let mechs = t.dbg("C_GetMechanismList", p11.get_mechanism_list(slot));
    for m in mechs.unwrap() {
        t.dbg(
            &format!("C_GetMechanismInfo {m}"),
            p11.get_mechanism_info(slot, m),
        );
    }
    let ecdsa_sha256 = MechanismType::ECDSA_SHA256;
    t.rv(
        "C_GetMechanismInfo ECDSA_SHA256",
        p11.get_mechanism_info(slot, ecdsa_sha256),
    );

    // Session and login.
    let s = t.rv("C_OpenSession", p11.open_rw_session(slot)).unwrap();
    let state = |s: &Session| {
        s.get_session_info()
            .map(|i| (i.session_state(), i.read_write()))
    };
    t.dbg("C_GetSessionInfo", state(&s));
    let user = |p: &str| s.login(UserType::User, Some(&common::pin(p)));
    t.rv("C_Login wrong PIN", user("0000"));
    t.rv("C_Login", user(common::USER_PIN));
    t.rv("C_Login again", user(common::USER_PIN));
    t.rv(
        "C_Login SO",
        s.login(UserType::So, Some(&common::pin(common::SO_PIN))),
    );
    t.dbg("C_GetSessionInfo", state(&s));
    t.dbg("C_GetTokenInfo logged in", p11.get_token_info(slot));

    // Key generation: this run's own session keys, and their attributes.
    let (no, yes) = (Attribute::Token(false), Attribute::Sign(true));
    let bits = Attribute::ModulusBits(2048.into());
    let (enc, ver) = (Attribute::Encrypt(true), Attribute::Verify(true));
    let pub_t = [no.clone(), bits, lbl("rsa"), id.clone(), enc, ver.clone()];
    let priv_t = [
        no.clone(),
        lbl("rsa"),
        id.clone(),
        Attribute::Decrypt(true),
        yes.clone(),
    ];
    let rsa = s.generate_key_pair(&M::RsaPkcsKeyPairGen, &pub_t, &priv_t);
    let (rsa_pub, rsa_priv) = t.rv("C_GenerateKeyPair RSA", rsa).unwrap();
    key_facts(&s, t, "RSA public", rsa_pub);
    key_facts(&s, t, "RSA private", rsa_priv);
    let modulus = s.get_attributes(rsa_pub, &[A::Modulus]);
    t.call("RSA modulus", modulus, |a| match &a[..] {
        [Attribute::Modulus(n)] => format!("{} bytes, top bit {}", n.len(), n[0] >> 7),
        other => format!("{other:?}"),
    });
    let pub_t = [
        no.clone(),
        Attribute::EcParams(P256.to_vec()),
        lbl("ec"),
        id.clone(),
        ver,
    ];
    let priv_t = [no.clone(), lbl("ec"), id.clone(), yes];
    let ec = s.generate_key_pair(&M::EccKeyPairGen, &pub_t, &priv_t);
    let (ec_pub, ec_priv) = t.rv("C_GenerateKeyPair EC", ec).unwrap();
    key_facts(&s, t, "EC public", ec_pub);
    key_facts(&s, t, "EC private", ec_priv);
    t.call(
        "EC point",
        s.get_attributes(ec_pub, &[A::EcPoint]),
        |a| match &a[..] {
            [Attribute::EcPoint(p)] => format!("{} bytes, {}", p.len(), hex(&p[..3])),
            other => format!("{other:?}"),
        },
    );
    let aes_t = [
        no.clone(),
        Attribute::ValueLen(32.into()),
        lbl("aes"),
        id.clone(),
    ];
    let aes = t
        .rv("C_GenerateKey AES", s.generate_key(&M::AesKeyGen, &aes_t))
        .unwrap();
    key_facts(&s, t, "AES", aes);
    let value = s.get_attributes(aes, &[A::Value, A::Label]);
    t.call("AES value (unextractable)", value, |a| show(a));
    t.rv(
        "C_GenerateKey AES no length",
        s.generate_key(&M::AesKeyGen, std::slice::from_ref(&no)),
    );
    let bad_params = [Attribute::EcParams(vec![6, 1, 0])];
    let r = s.generate_key_pair(&M::EccKeyPairGen, &bad_params, &[]);
    t.rv("C_GenerateKeyPair EC bad params", r);

    // Object lists: by id (this run's keys), by class.
    let mut listed: Vec<String> = (s.find_objects(std::slice::from_ref(&id)).unwrap().iter())
        .map(|o| show(&s.get_attributes(*o, &[A::Class, A::Label, A::Id]).unwrap()))
        .collect();
    listed.sort();
    t.line("objects with this run's id", listed);
    let secret = Attribute::Class(ObjectClass::SECRET_KEY);
    t.len("secret keys", s.find_objects(std::slice::from_ref(&secret)));

    // Deterministic outputs from the shared keys.
    let shared_pub = find_one(&s, ObjectClass::PUBLIC_KEY, "shared-rsa");
    let shared_priv = find_one(&s, ObjectClass::PRIVATE_KEY, "shared-rsa");
    let shared_aes = find_one(&s, ObjectClass::SECRET_KEY, "shared-aes");
    t.dbg(
        "shared RSA modulus",
        s.get_attributes(shared_pub, &[A::Modulus]),
    );
    let sig = s.sign(&M::Sha256RsaPkcs, shared_priv, MSG);
    let sig = t.hex("C_Sign SHA256_RSA_PKCS shared", sig).unwrap();
    let verify = |m: &[u8], sg: &[u8]| s.verify(&M::Sha256RsaPkcs, shared_pub, m, sg);
    t.rv("C_Verify shared", verify(MSG, &sig));
    t.rv(
        "C_Verify shared tampered",
        verify(b"the same message on both paths!", &sig),
    );
    t.rv("C_Verify shared short", verify(MSG, &sig[1..]));
    let cbc = s.encrypt(&M::AesCbcPad(IV), shared_aes, MSG);
    t.hex("C_Encrypt AES_CBC_PAD shared", cbc);
    let mut gcm_iv = [7u8; 12];
    let gcm = M::AesGcm(GcmParams::new(&mut gcm_iv, b"aad", 128.into()).unwrap());
    let ct = t
        .hex("C_Encrypt AES_GCM shared", s.encrypt(&gcm, shared_aes, MSG))
        .unwrap();
    t.hex("C_Decrypt AES_GCM shared", s.decrypt(&gcm, shared_aes, &ct));
    let mut bad = ct.clone();
    bad[ct.len() - 1] ^= 1;
    t.rv(
        "C_Decrypt AES_GCM bad tag",
        s.decrypt(&gcm, shared_aes, &bad),
    );
    let kek_t = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        no.clone(),
        Attribute::Wrap(true),
        Attribute::Value(vec![0x5a; 32]),
    ];
    let kek = t.rv("C_CreateObject KEK", s.create_object(&kek_t)).unwrap();
    let wrapped = s.wrap_key(&M::AesKeyWrap, kek, shared_aes);
    t.hex("C_WrapKey AES_KEY_WRAP shared", wrapped);
    t.rv(
        "C_WrapKey unextractable",
        s.wrap_key(&M::AesKeyWrap, kek, aes),
    );
    t.hex("C_Digest SHA256", s.digest(&M::Sha256, b"abc"));
    t.rv("C_DigestInit", s.digest_init(&M::Sha256));
    t.rv("C_DigestUpdate", s.digest_update(b"a"));
    t.rv("C_DigestUpdate", s.digest_update(b"bc"));
    t.hex("C_DigestFinal", s.digest_final());
    t.rv("C_DigestFinal not initialised", s.digest_final());

    // Randomised outputs from this run's keys: lengths and verification results.
    let hash = s.digest(&M::Sha256, MSG).unwrap();
    let ecsig = t
        .len("C_Sign ECDSA", s.sign(&M::Ecdsa, ec_priv, &hash))
        .unwrap();
    t.rv("C_Verify ECDSA", s.verify(&M::Ecdsa, ec_pub, &hash, &ecsig));
    t.rv(
        "C_Verify ECDSA other hash",
        s.verify(&M::Ecdsa, ec_pub, &[0; 32], &ecsig),
    );
    t.rv(
        "C_SignInit ECDSA_SHA256",
        s.sign_init(&M::EcdsaSha256, ec_priv),
    );
    t.rv("C_SignUpdate not initialised", s.sign_update(MSG));
    let pss = PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    };
    let psig = s.sign(&M::Sha256RsaPkcsPss(pss), rsa_priv, MSG);
    let psig = t.len("C_Sign PSS", psig).unwrap();
    let r = s.verify(&M::Sha256RsaPkcsPss(pss), rsa_pub, MSG, &psig);
    t.rv("C_Verify PSS", r);
    t.rv(
        "C_SignInit public key",
        s.sign_init(&M::Sha256RsaPkcs, rsa_pub),
    );
    t.rv(
        "C_SignInit multi-part",
        s.sign_init(&M::Sha256RsaPkcs, shared_priv),
    );
    for part in MSG.chunks(8) {
        t.rv("C_SignUpdate", s.sign_update(part));
    }
    t.call("C_SignFinal = C_Sign", s.sign_final(), |v| {
        (v == &sig).to_string()
    });
    let sha1 = (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1);
    let oaep = M::RsaPkcsOaep(PkcsOaepParams::new(sha1.0, sha1.1, PkcsOaepSource::empty()));
    let oct = t
        .len("C_Encrypt OAEP", s.encrypt(&oaep, rsa_pub, MSG))
        .unwrap();
    t.hex("C_Decrypt OAEP", s.decrypt(&oaep, rsa_priv, &oct));
    t.rv(
        "C_Encrypt OAEP too long",
        s.encrypt(&oaep, rsa_pub, &[1; 215]),
    );
    let label = PkcsOaepSource::data_specified(b"label");
    let oaep_label = M::RsaPkcsOaep(PkcsOaepParams::new(sha1.0, sha1.1, label));
    t.rv(
        "C_EncryptInit OAEP label",
        s.encrypt(&oaep_label, rsa_pub, MSG),
    );
    t.len("C_GenerateRandom", s.generate_random_vec(48));
    t.rv("C_SeedRandom", s.seed_random(b"seed"));

    // Object management.
    let value = Attribute::Value(b"v".to_vec());
    let data_t = [
        Attribute::Class(ObjectClass::DATA),
        no.clone(),
        lbl("data"),
        value,
    ];
    let data = t
        .rv("C_CreateObject data", s.create_object(&data_t))
        .unwrap();
    t.rv(
        "C_SetAttributeValue label",
        s.update_attributes(data, &[lbl("data2")]),
    );
    let r = s.update_attributes(data, &[Attribute::Class(ObjectClass::SECRET_KEY)]);
    t.rv("C_SetAttributeValue class", r);
    let copy = t
        .rv("C_CopyObject", s.copy_object(data, &[lbl("data3")]))
        .unwrap();
    let got = s.get_attributes(copy, &[A::Label, A::Value]);
    t.call("copy attributes", got, |a| show(a));
    t.rv("C_DestroyObject", s.destroy_object(data));
    t.rv("C_DestroyObject again", s.destroy_object(data));
    // SAFETY (of the API contract only): a handle the token never issued.
    let bogus = unsafe { ObjectHandle::new_from_raw(0xdead_beef) };
    t.rv(
        "C_GetAttributeValue bogus",
        s.get_attributes(bogus, &[A::Label]),
    );
    let vendor = KeyType::new_vendor_defined(CKK_VENDOR_DEFINED | 5).unwrap();
    let odd_t = [
        secret.clone(),
        Attribute::KeyType(vendor),
        Attribute::Value(vec![1; 16]),
    ];
    t.rv("C_CreateObject unknown key type", s.create_object(&odd_t));
    let data_class = Attribute::Class(ObjectClass::DATA);
    t.len("find data objects", s.find_objects(&[data_class]));

    // The C-level conventions on the same session, through this module's function list.
    let h = s.handle();
    let mut m = gateway_support::mech(CKM_SHA256_RSA_PKCS);
    let rv = raw!(raw, C_SignInit(h, &mut m, shared_priv.handle()));
    t.line("raw C_SignInit", name(rv));
    let (rv, len, _) = raw_sign(raw, h, None);
    t.line("raw C_Sign size query", (rv, len));
    let (rv, len, _) = raw_sign(raw, h, Some(100));
    t.line("raw C_Sign short", (rv, len));
    let (rv, len, out) = raw_sign(raw, h, Some(512));
    t.line("raw C_Sign", (rv, len, out == sig));
    let (mut v1, mut v2, mut v3) = ([0u8; 32], [0u8; 64], [0u8; 8]);
    let mut tmpl = [
        attr(CKA_VALUE, &mut v1),
        attr(CKA_LABEL, &mut v2),
        attr(0x7fff_0001, &mut v3),
    ];
    let rv = raw!(
        raw,
        C_GetAttributeValue(h, aes.handle(), tmpl.as_mut_ptr(), 3)
    );
    let lens: Vec<_> = tmpl.iter().map(|a| a.ulValueLen as i64).collect();
    t.line("raw C_GetAttributeValue", (name(rv), lens));

    // Leave the token as we found it.
    t.rv("C_Logout", s.logout());
    t.rv("C_Logout again", s.logout());
    t.dbg("C_GetSessionInfo", state(&s));
    t.rv("C_CloseSession", s.close());
    t.dbg("C_GetTokenInfo end", p11.get_token_info(slot));
    std::mem::take(&mut t.lines)
}

#[test]
fn direct_and_through_keywarden_transcripts_match() {
    let _env = common::TestEnv::new();
    let direct = common::load(Path::new(common::SOFTHSM_MODULE));
    let kw = common::load(&common::keywarden_module());
    let direct_raw = Raw::open(Path::new(common::SOFTHSM_MODULE));
    let kw_raw = Raw::open(&common::keywarden_module());
    make_shared_keys(&direct);

    let a = scenario(&direct, &direct_raw, "runA");
    let b = scenario(&kw, &kw_raw, "runB");
    // Shown by `cargo nextest run --no-capture`, or on failure.
    for line in &b {
        println!("{line}");
    }
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "direct (left) vs Keywarden (right)");
    }
    assert_eq!(a.len(), b.len());

    // The transcript is not vacuous: spot-check lines that must look a certain way.
    let has = |prefix: &str, part: &str| {
        assert!(
            b.iter().any(|l| l.starts_with(prefix) && l.contains(part)),
            "{prefix} … {part}\n{b:#?}"
        );
    };
    has("C_Login wrong PIN", "Err(PinIncorrect)");
    has("C_Login:", "Ok(");
    has(
        "C_Digest SHA256",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    has("C_Sign SHA256_RSA_PKCS shared", "Ok(");
    has("C_Verify shared tampered", "Err(SignatureInvalid)");
    has("C_SignFinal = C_Sign", "Ok(true)");
    has("C_Verify PSS", "Ok()");
    has("C_Verify ECDSA:", "Ok()");
    has("C_Decrypt OAEP", &hex(MSG));
    has("C_SignInit ECDSA_SHA256", "Err(MechanismInvalid)");
    has("C_DestroyObject again", "Err(ObjectHandleInvalid)");
    has("objects with this run's id", "<run>-rsa");
    has("raw C_Sign size query", "(\"CKR_OK\", 256)");
    has("raw C_Sign short", "(\"CKR_BUFFER_TOO_SMALL\", 256)");
    has("raw C_Sign:", "(\"CKR_OK\", 256, true)");
    has("raw C_GetAttributeValue", "CKR_ATTRIBUTE_SENSITIVE");
    assert!(b.len() > 80, "{} lines", b.len());
}
