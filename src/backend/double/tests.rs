//! The double keeps the PKCS#11 rules the gateway's tests rely on.

use pkcs11_sys::*;

use super::*;
use crate::abi::OutBuf;
use crate::backend::{Backend, Calls, CryptoCalls, Notify};

fn open(d: &Double) -> CK_SESSION_HANDLE {
    let mut s = 0;
    let notify = Notify {
        application: std::ptr::null_mut(),
        callback: None,
    };
    let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
    assert_eq!(d.open_session(SLOT, flags, notify, &mut s), CKR_OK);
    s
}

fn started() -> (Double, CK_SESSION_HANDLE) {
    let d = Double::new();
    d.initialize().unwrap();
    let s = open(&d);
    (d, s)
}

fn ecdsa() -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: CKM_ECDSA,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    }
}

#[test]
fn nothing_answers_before_initialize() {
    let d = Double::new();
    let mut s = 0;
    let notify = Notify {
        application: std::ptr::null_mut(),
        callback: None,
    };
    let rv = d.open_session(SLOT, CKF_SERIAL_SESSION, notify, &mut s);
    assert_eq!(rv, CKR_CRYPTOKI_NOT_INITIALIZED);
}

#[test]
fn sign_follows_the_output_buffer_rules() {
    let (d, s) = started();
    let key = d.add_signing_key("k", b"id");
    assert_eq!(d.sign_init(s, &ecdsa(), key), CKR_OK);
    assert_eq!(d.sign_init(s, &ecdsa(), key), CKR_OPERATION_ACTIVE);
    assert_eq!(d.key_uses(key), 2);
    let data = [1u8; 32];
    let mut len = 0;
    assert_eq!(d.sign(s, Some(&data), OutBuf::new(None, &mut len)), CKR_OK);
    assert_eq!(len, 64);
    let mut short = [0u8; 8];
    len = 8;
    let rv = d.sign(s, Some(&data), OutBuf::new(Some(&mut short), &mut len));
    assert_eq!((rv, len), (CKR_BUFFER_TOO_SMALL, 64));
    assert!(d.has_operation(s, OpKind::Sign));
    let mut sig = [0u8; 100];
    len = 100;
    let rv = d.sign(s, Some(&data), OutBuf::new(Some(&mut sig), &mut len));
    assert_eq!((rv, len), (CKR_OK, 64));
    assert_eq!(sig[..64].to_vec(), signature(b"id", &data));
    assert!(!d.has_operation(s, OpKind::Sign));
    assert_eq!(
        d.sign(s, Some(&data), OutBuf::new(None, &mut len)),
        CKR_OPERATION_NOT_INITIALIZED
    );
}

#[test]
fn multi_part_sign_and_verify_agree() {
    let (d, s) = started();
    let key = d.add_signing_key("k", b"id");
    let public = d.add_object(&[
        FindAttr::Class(CKO_PUBLIC_KEY),
        FindAttr::Id(b"id".to_vec()),
        FindAttr::Flag(CKA_VERIFY, true),
    ]);
    assert_eq!(d.sign_init(s, &ecdsa(), key), CKR_OK);
    assert_eq!(d.sign_update(s, Some(b"ab")), CKR_OK);
    assert_eq!(d.sign_update(s, Some(b"cd")), CKR_OK);
    let mut sig = [0u8; 64];
    let mut len = 64;
    assert_eq!(
        d.sign_final(s, OutBuf::new(Some(&mut sig), &mut len)),
        CKR_OK
    );
    assert_eq!(sig.to_vec(), signature(b"id", b"abcd"));
    assert_eq!(d.verify_init(s, &ecdsa(), public), CKR_OK);
    assert_eq!(d.verify(s, Some(b"abcd"), Some(&sig)), CKR_OK);
    assert_eq!(d.verify_init(s, &ecdsa(), public), CKR_OK);
    assert_eq!(
        d.verify(s, Some(b"abce"), Some(&sig)),
        CKR_SIGNATURE_INVALID
    );
    // A key whose CKA_SIGN is false may not sign.
    let no_sign = d.add_object(&[FindAttr::Flag(CKA_SIGN, false)]);
    assert_eq!(
        d.sign_init(s, &ecdsa(), no_sign),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
}

#[test]
fn a_scripted_fault_answers_once_and_ends_the_operation() {
    let (d, s) = started();
    let key = d.add_signing_key("k", b"id");
    assert_eq!(d.sign_init(s, &ecdsa(), key), CKR_OK);
    d.fail_next(crate::functions::FunctionId::C_Sign, CKR_DEVICE_ERROR);
    let mut len = 0;
    assert_eq!(
        d.sign(s, Some(b"x"), OutBuf::new(None, &mut len)),
        CKR_DEVICE_ERROR
    );
    assert!(!d.has_operation(s, OpKind::Sign));
    assert_eq!(d.sign_init(s, &ecdsa(), key), CKR_OK);
    assert_eq!(d.sign(s, Some(b"x"), OutBuf::new(None, &mut len)), CKR_OK);
    assert_eq!(d.calls(crate::functions::FunctionId::C_Sign), 2);
}

#[test]
fn attributes_follow_the_get_attribute_value_rules() {
    let (d, s) = started();
    let key = d.add_object(&[
        FindAttr::Class(CKO_SECRET_KEY),
        FindAttr::Label("aes".into()),
        FindAttr::Flag(CKA_SENSITIVE, true),
        FindAttr::Bytes(CKA_VALUE, vec![9; 16]),
    ]);
    let mut label = [0u8; 8];
    let mut value = [0u8; 16];
    let mut t = [
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: label.as_mut_ptr().cast(),
            ulValueLen: 8,
        },
        CK_ATTRIBUTE {
            type_: CKA_VALUE,
            pValue: value.as_mut_ptr().cast(),
            ulValueLen: 16,
        },
        CK_ATTRIBUTE {
            type_: CKA_MODULUS,
            pValue: std::ptr::null_mut(),
            ulValueLen: 0,
        },
    ];
    let rv = d.get_attribute_value(s, key, Some(&mut t));
    assert_eq!(rv, CKR_ATTRIBUTE_SENSITIVE);
    assert_eq!(t[0].ulValueLen, 3);
    assert_eq!(&label[..3], b"aes");
    assert_eq!(t[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(t[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_eq!(value, [0; 16]);
}

#[test]
fn search_finds_by_template_and_closing_drops_session_objects() {
    let (d, s) = started();
    let a = d.add_signing_key("a", b"1");
    d.add_signing_key("b", b"2");
    let label = *b"a";
    let t = [CK_ATTRIBUTE {
        type_: CKA_LABEL,
        pValue: label.as_ptr().cast_mut().cast(),
        ulValueLen: 1,
    }];
    assert_eq!(d.find_objects_init(s, Some(&t)), CKR_OK);
    let mut found = [0; 4];
    let mut n = 0;
    assert_eq!(d.find_objects(s, Some(&mut found), &mut n), CKR_OK);
    assert_eq!(&found[..n as usize], &[a]);
    assert_eq!(d.find_objects_final(s), CKR_OK);
    assert_eq!(d.find_objects_final(s), CKR_OPERATION_NOT_INITIALIZED);

    let class = CKO_DATA.to_ne_bytes();
    let session_object = [CK_ATTRIBUTE {
        type_: CKA_CLASS,
        pValue: class.as_ptr().cast_mut().cast(),
        ulValueLen: class.len() as CK_ULONG,
    }];
    let mut h = 0;
    assert_eq!(d.create_object(s, Some(&session_object), &mut h), CKR_OK);
    let mut size = 0;
    assert_eq!(d.get_object_size(s, h, &mut size), CKR_OK);
    assert_eq!(d.close_session(s), CKR_OK);
    let s2 = open(&d);
    assert_eq!(
        d.get_object_size(s2, h, &mut size),
        CKR_OBJECT_HANDLE_INVALID
    );
    assert_eq!(d.get_object_size(s2, a, &mut size), CKR_OK);
}
