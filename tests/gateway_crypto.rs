//! Key generation, signatures, encryption, digests and random numbers through Keywarden
//! (cryptoki client). Outputs are checked against known answers or re-checked by an
//! independent route (another mechanism, a fresh session), not only round-tripped.
mod common;
mod gateway_support;

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use gateway_support::{code, unhex};

const MSG: &[u8] = b"Keywarden forwards this message to the token unchanged";
/// DER OID of P-256 (CKA_EC_PARAMS).
use common::P256;
/// DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1).
const SHA256_DIGEST_INFO: &str = "3031300d060960864801650304020105000420";

fn setup() -> (common::TestEnv, Pkcs11, Slot, Session) {
    let env = common::TestEnv::new();
    let p11 = common::load(&common::keywarden_module());
    let slot = common::test_slot(&p11);
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&AuthPin::new(common::USER_PIN.into())))
        .unwrap();
    (env, p11, slot, s)
}

/// A token RSA-2048 pair whose public half can also do raw RSA (for re-checking).
fn rsa_pair(s: &Session, id: &[u8]) -> (ObjectHandle, ObjectHandle) {
    let public = [
        Attribute::Token(true),
        Attribute::ModulusBits(2048.into()),
        Attribute::PublicExponent(vec![1, 0, 1]),
        Attribute::Verify(true),
        Attribute::Encrypt(true),
        Attribute::Id(id.to_vec()),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
        Attribute::Decrypt(true),
        Attribute::Id(id.to_vec()),
    ];
    s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
        .unwrap()
}

fn ec_pair(s: &Session, id: &[u8]) -> (ObjectHandle, ObjectHandle) {
    let public = [
        Attribute::Token(true),
        Attribute::EcParams(P256.to_vec()),
        Attribute::Verify(true),
        Attribute::Id(id.to_vec()),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::Sign(true),
        Attribute::Id(id.to_vec()),
    ];
    s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .unwrap()
}

fn import_aes(s: &Session, value: &[u8]) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Value(value.to_vec()),
    ])
    .unwrap()
}

fn sha256(s: &Session, data: &[u8]) -> Vec<u8> {
    s.digest(&Mechanism::Sha256, data).unwrap()
}

/// Re-opens the token in a new session after closing `s` (which logs the user out) and
/// finds the public key with `id` there: verification must not depend on session state.
fn fresh_public_key(p11: &Pkcs11, slot: Slot, s: Session, id: &[u8]) -> (Session, ObjectHandle) {
    s.close().unwrap();
    let s = p11.open_ro_session(slot).unwrap();
    let found = s
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(id.to_vec()),
        ])
        .unwrap();
    assert_eq!(found.len(), 1);
    (s, found[0])
}

#[test]
fn rsa_2048_pkcs1_sha256_sign_verify_and_multipart() {
    let (_env, p11, slot, s) = setup();
    let (public, private) = rsa_pair(&s, b"rsa1");
    let attrs = s
        .get_attributes(
            public,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .unwrap();
    let Attribute::Modulus(n) = &attrs[0] else {
        panic!("{attrs:?}")
    };
    assert_eq!(n.len(), 256);
    assert!(n[0] & 0x80 != 0, "a 2048-bit modulus has its top bit set");
    assert_eq!(attrs[1], Attribute::PublicExponent(vec![1, 0, 1]));

    let sig = s.sign(&Mechanism::Sha256RsaPkcs, private, MSG).unwrap();
    assert_eq!(sig.len(), 256);
    // PKCS#1 v1.5 is deterministic: a second and a multi-part signature are identical.
    assert_eq!(
        s.sign(&Mechanism::Sha256RsaPkcs, private, MSG).unwrap(),
        sig
    );
    s.sign_init(&Mechanism::Sha256RsaPkcs, private).unwrap();
    for part in MSG.chunks(7) {
        s.sign_update(part).unwrap();
    }
    assert_eq!(s.sign_final().unwrap(), sig);

    // Independent check: the public operation on the signature yields the EMSA-PKCS1-v1_5
    // encoding of SHA-256(MSG): 00 01 FF.. 00 DigestInfo H.
    let em = s.encrypt(&Mechanism::RsaX509, public, &sig).unwrap();
    let t = [unhex(SHA256_DIGEST_INFO), sha256(&s, MSG)].concat();
    assert_eq!(&em[..2], &[0, 1]);
    assert!(em[2..256 - t.len() - 1].iter().all(|b| *b == 0xff));
    assert_eq!(em[256 - t.len() - 1], 0);
    assert_eq!(&em[256 - t.len()..], &t[..]);

    let (s, public) = fresh_public_key(&p11, slot, s, b"rsa1");
    s.verify(&Mechanism::Sha256RsaPkcs, public, MSG, &sig)
        .unwrap();
    let code_of = |m: &[u8], sg: &[u8]| code(s.verify(&Mechanism::Sha256RsaPkcs, public, m, sg));
    assert_eq!(
        code_of(
            b"Keywarden forwards this message to the token unchangeD",
            &sig
        ),
        RvError::SignatureInvalid
    );
    assert_eq!(code_of(MSG, &sig[..255]), RvError::SignatureLenRange);
    // Multi-part verification agrees.
    s.verify_init(&Mechanism::Sha256RsaPkcs, public).unwrap();
    for part in MSG.chunks(5) {
        s.verify_update(part).unwrap();
    }
    s.verify_final(&sig).unwrap();
}

#[test]
fn rsa_pss_sign_verify() {
    let (_env, p11, slot, s) = setup();
    let (public, private) = rsa_pair(&s, b"pss");
    let params = PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    };
    let sig1 = s
        .sign(&Mechanism::Sha256RsaPkcsPss(params), private, MSG)
        .unwrap();
    let sig2 = s
        .sign(&Mechanism::Sha256RsaPkcsPss(params), private, MSG)
        .unwrap();
    assert_eq!(sig1.len(), 256);
    assert_ne!(sig1, sig2, "PSS uses a random salt");
    // PSS encoded messages end in 0xbc (RFC 8017 §9.1.1 step 12).
    assert_eq!(
        *s.encrypt(&Mechanism::RsaX509, public, &sig1)
            .unwrap()
            .last()
            .unwrap(),
        0xbc
    );

    // The hashing mechanism and the raw one over the digest agree.
    let hash = sha256(&s, MSG);
    let raw_sig = s
        .sign(&Mechanism::RsaPkcsPss(params), private, &hash)
        .unwrap();
    let (s, public) = fresh_public_key(&p11, slot, s, b"pss");
    for sig in [&sig1, &sig2, &raw_sig] {
        s.verify(&Mechanism::Sha256RsaPkcsPss(params), public, MSG, sig)
            .unwrap();
        s.verify(&Mechanism::RsaPkcsPss(params), public, &hash, sig)
            .unwrap();
    }
    let mut bad = sig1.clone();
    bad[100] ^= 0x40;
    assert_eq!(
        code(s.verify(&Mechanism::Sha256RsaPkcsPss(params), public, MSG, &bad)),
        RvError::SignatureInvalid
    );
    assert_eq!(
        code(s.verify(
            &Mechanism::Sha256RsaPkcsPss(params),
            public,
            b"another message",
            &sig1
        )),
        RvError::SignatureInvalid
    );
}

#[test]
fn ecdsa_p256_sign_verify() {
    let (_env, p11, slot, s) = setup();
    let (public, private) = ec_pair(&s, b"ec1");
    let attrs = s
        .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
        .unwrap();
    assert_eq!(attrs[0], Attribute::EcParams(P256.to_vec()));
    let Attribute::EcPoint(point) = &attrs[1] else {
        panic!("{attrs:?}")
    };
    // DER OCTET STRING holding an uncompressed point: 04 41 04 X(32) Y(32).
    assert_eq!((point.len(), &point[..3]), (67, &[0x04, 0x41, 0x04][..]));

    // Raw ECDSA over SHA-256(MSG), the digest itself checked against a known answer
    // in digest_sha256_known_answers.
    let hash = sha256(&s, MSG);
    let sig = s.sign(&Mechanism::Ecdsa, private, &hash).unwrap();
    assert_eq!(sig.len(), 64, "r || s for P-256");
    assert_ne!(
        s.sign(&Mechanism::Ecdsa, private, &hash).unwrap(),
        sig,
        "random k"
    );

    // SoftHSM 2.6.1 offers no CKM_ECDSA_SHA256; Keywarden must say so rather than
    // pretend. Hashing ECDSA is then digest + CKM_ECDSA, done multi-part here.
    assert_eq!(
        code(s.sign_init(&Mechanism::EcdsaSha256, private)),
        RvError::MechanismInvalid
    );
    s.digest_init(&Mechanism::Sha256).unwrap();
    for part in MSG.chunks(9) {
        s.digest_update(part).unwrap();
    }
    let multi_hash = s.digest_final().unwrap();
    assert_eq!(multi_hash, hash);
    let sig2 = s.sign(&Mechanism::Ecdsa, private, &multi_hash).unwrap();

    let (s, public) = fresh_public_key(&p11, slot, s, b"ec1");
    s.verify(&Mechanism::Ecdsa, public, &hash, &sig).unwrap();
    s.verify(&Mechanism::Ecdsa, public, &hash, &sig2).unwrap();
    let mut other = hash.clone();
    other[0] ^= 1;
    assert_eq!(
        code(s.verify(&Mechanism::Ecdsa, public, &other, &sig)),
        RvError::SignatureInvalid
    );
    let mut bad = sig.clone();
    bad[40] ^= 1;
    assert_eq!(
        code(s.verify(&Mechanism::Ecdsa, public, &hash, &bad)),
        RvError::SignatureInvalid
    );
}

#[test]
fn aes_256_generate_and_cbc_pad() {
    let (_env, _p11, _slot, s) = setup();
    // Known answer: SP 800-38A F.2.5 (CBC-AES256), first block; CBC-PAD adds a full
    // padding block after a 16-byte plaintext.
    let kat = import_aes(
        &s,
        &unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"),
    );
    let iv: [u8; 16] = unhex("000102030405060708090a0b0c0d0e0f")
        .try_into()
        .unwrap();
    let pt = unhex("6bc1bee22e409f96e93d7e117393172a");
    let ct = s.encrypt(&Mechanism::AesCbcPad(iv), kat, &pt).unwrap();
    assert_eq!(ct.len(), 32);
    assert_eq!(&ct[..16], &unhex("f58c4c04d6e5f1ba779eabfb5f7bfbd6")[..]);
    assert_eq!(s.decrypt(&Mechanism::AesCbcPad(iv), kat, &ct).unwrap(), pt);

    let key = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(true),
                Attribute::ValueLen(32.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Label(b"aes256".to_vec()),
            ],
        )
        .unwrap();
    let attrs = s
        .get_attributes(key, &[AttributeType::ValueLen, AttributeType::KeyType])
        .unwrap();
    assert_eq!(
        attrs,
        vec![
            Attribute::ValueLen(32.into()),
            Attribute::KeyType(KeyType::AES)
        ]
    );

    let data: Vec<u8> = (0..100u8).collect();
    let ct = s.encrypt(&Mechanism::AesCbcPad(iv), key, &data).unwrap();
    assert_eq!(ct.len(), 112, "100 bytes pad to 7 blocks");
    assert_eq!(
        s.decrypt(&Mechanism::AesCbcPad(iv), key, &ct).unwrap(),
        data
    );

    // Multi-part encryption gives the same ciphertext; multi-part decryption the data.
    s.encrypt_init(&Mechanism::AesCbcPad(iv), key).unwrap();
    let mut multi = Vec::new();
    for part in [&data[..7], &data[7..57], &data[57..]] {
        multi.extend(s.encrypt_update(part).unwrap());
    }
    multi.extend(s.encrypt_final().unwrap());
    assert_eq!(multi, ct);
    s.decrypt_init(&Mechanism::AesCbcPad(iv), key).unwrap();
    let mut back = s.decrypt_update(&ct[..50]).unwrap();
    back.extend(s.decrypt_update(&ct[50..]).unwrap());
    back.extend(s.decrypt_final().unwrap());
    assert_eq!(back, data);
    // Decrypting with another IV changes the first block.
    let other = s.decrypt(&Mechanism::AesCbcPad([0; 16]), key, &ct).unwrap();
    assert_ne!(&other[..16], &data[..16]);
}

fn gcm<'a>(iv: &'a mut [u8], aad: &'a [u8]) -> Mechanism<'a> {
    Mechanism::AesGcm(GcmParams::new(iv, aad, 128.into()).unwrap())
}

#[test]
fn aes_gcm_known_answer_and_tag_tamper() {
    let (_env, _p11, _slot, s) = setup();
    // GCM specification test case 16 (AES-256, 96-bit IV, AAD, 128-bit tag).
    let key = import_aes(
        &s,
        &unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"),
    );
    let mut iv = unhex("cafebabefacedbaddecaf888");
    let aad = unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    let pt = unhex(concat!(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
    ));
    let want = unhex(concat!(
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa",
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
        "76fc6ece0f4e1768cddf8853bb2d551b"
    ));
    let ct = s.encrypt(&gcm(&mut iv, &aad), key, &pt).unwrap();
    assert_eq!(ct, want);
    assert_eq!(s.decrypt(&gcm(&mut iv, &aad), key, &ct).unwrap(), pt);

    // A flipped tag bit, or other AAD, must fail authentication. SoftHSM 2.6.1 reports
    // CKR_GENERAL_ERROR here (gateway_errors.rs checks Keywarden passes that through).
    let mut bad = ct.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert_eq!(
        code(s.decrypt(&gcm(&mut iv, &aad), key, &bad)),
        RvError::GeneralError
    );
    assert!(s.decrypt(&gcm(&mut iv, b"other aad"), key, &ct).is_err());
    // The session is usable again after the failed operation.
    assert_eq!(s.decrypt(&gcm(&mut iv, &aad), key, &ct).unwrap(), pt);
}

#[test]
fn rsa_oaep_round_trip() {
    let (_env, _p11, _slot, s) = setup();
    let (public, private) = rsa_pair(&s, b"oaep");
    // SHA-1/MGF1-SHA1 with no label: what SoftHSM 2.6.1 supports (it refuses labels).
    let params = PkcsOaepParams::new(
        MechanismType::SHA1,
        PkcsMgfType::MGF1_SHA1,
        PkcsOaepSource::empty(),
    );
    let m = Mechanism::RsaPkcsOaep(params);
    let secret = b"a 32-byte session key, more or l";
    let c1 = s.encrypt(&m, public, secret).unwrap();
    let c2 = s.encrypt(&m, public, secret).unwrap();
    assert_eq!(c1.len(), 256);
    assert_ne!(c1, c2, "OAEP is randomised");
    assert_eq!(s.decrypt(&m, private, &c1).unwrap(), secret);
    assert_eq!(s.decrypt(&m, private, &c2).unwrap(), secret);
    // Too long for OAEP-SHA1 with a 2048-bit key (max 256 - 2*20 - 2 = 214 bytes).
    // SoftHSM 2.6.1 itself answers CKR_GENERAL_ERROR (spec: CKR_DATA_LEN_RANGE); the
    // same code must come through Keywarden (transparency.rs compares the two).
    assert_eq!(
        code(s.encrypt(&m, public, &[0u8; 215])),
        RvError::GeneralError
    );
    assert_eq!(s.encrypt(&m, public, &[0u8; 214]).unwrap().len(), 256);
}

#[test]
fn digest_sha256_known_answers() {
    let (_env, _p11, _slot, s) = setup();
    let abc = unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_eq!(sha256(&s, b"abc"), abc);
    assert_eq!(
        sha256(&s, b""),
        unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    s.digest_init(&Mechanism::Sha256).unwrap();
    s.digest_update(b"a").unwrap();
    s.digest_update(b"").unwrap();
    s.digest_update(b"bc").unwrap();
    assert_eq!(s.digest_final().unwrap(), abc);

    let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    let want = unhex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    assert_eq!(sha256(&s, long), want);
    s.digest_init(&Mechanism::Sha256).unwrap();
    for part in long.chunks(13) {
        s.digest_update(part).unwrap();
    }
    assert_eq!(s.digest_final().unwrap(), want);
}

#[test]
fn random_and_seed() {
    let (_env, _p11, _slot, s) = setup();
    let a = s.generate_random_vec(32).unwrap();
    let b = s.generate_random_vec(32).unwrap();
    assert_eq!((a.len(), b.len()), (32, 32));
    assert_ne!(a, b);
    let mut buf = [0u8; 1000];
    s.generate_random_slice(&mut buf).unwrap();
    assert!(
        buf.iter().filter(|x| **x == 0).count() < 50,
        "1000 random bytes are not mostly zero"
    );
    s.seed_random(b"extra entropy from the application")
        .unwrap();
    assert_ne!(s.generate_random_vec(32).unwrap(), a);
}
