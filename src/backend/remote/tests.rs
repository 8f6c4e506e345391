//! The client and the service sides of every call, through a loopback transport
//! into the test double: the bytes go through the real encoder and decoder, the
//! outputs through the §5.2 and §5.7 rules as the double answers them.

use std::sync::Arc;

use pkcs11_sys::*;

use super::schema::{function_index, CARRIED};
use super::*;
use crate::abi::OutBuf;
use crate::backend::double::{signature, Double, SLOT, TOKEN_LABEL, USER_PIN};
use crate::backend::{Calls, CryptoCalls, Notify};
use crate::wire::WireError;

struct Loopback(Arc<Double>);

impl Transport for Loopback {
    fn round_trip(&self, request: &[u8], reply: &mut Vec<u8>) -> WireResult<()> {
        serve_request(&*self.0, request, reply)
    }
}

fn remote() -> (Arc<Double>, RemoteBackend) {
    let double = Arc::new(Double::new());
    double.initialize().expect("the double initialises");
    let remote = RemoteBackend::new(Box::new(Loopback(Arc::clone(&double))));
    (double, remote)
}

fn no_notify() -> Notify {
    Notify {
        application: std::ptr::null_mut(),
        callback: None,
    }
}

fn logged_in(r: &RemoteBackend) -> CK_SESSION_HANDLE {
    let mut s = 0;
    let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
    assert_eq!(r.open_session(SLOT, flags, no_notify(), &mut s), CKR_OK);
    assert_eq!(r.login(s, CKU_USER, Some(USER_PIN)), CKR_OK);
    s
}

#[test]
fn slot_and_token_information_arrive_field_by_field() {
    let (_, r) = remote();
    let mut n = 0;
    assert_eq!(r.get_slot_list(CK_TRUE, OutBuf::new(None, &mut n)), CKR_OK);
    assert_eq!(n, 1);
    let mut slots = [0; 4];
    let mut n = 4;
    assert_eq!(
        r.get_slot_list(CK_TRUE, OutBuf::new(Some(&mut slots), &mut n)),
        CKR_OK
    );
    assert_eq!((n, slots[0]), (1, SLOT));
    let mut info = CK_TOKEN_INFO::default();
    assert_eq!(r.get_token_info(SLOT, &mut info), CKR_OK);
    assert!(info.label.starts_with(TOKEN_LABEL.as_bytes()));
    assert_eq!(r.get_token_info(SLOT + 7, &mut info), CKR_SLOT_ID_INVALID);
}

#[test]
fn a_signature_follows_the_size_query_rules() {
    let (double, r) = remote();
    let key = double.add_signing_key("app-sign", b"k1");
    let s = logged_in(&r);
    let m = CK_MECHANISM {
        mechanism: CKM_ECDSA,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    assert_eq!(r.sign_init(s, &m, key), CKR_OK);
    let mut len = 0;
    assert_eq!(
        r.sign(s, Some(b"data"), OutBuf::new(None, &mut len)),
        CKR_OK
    );
    assert_eq!(len, 64);
    let mut short = [0u8; 8];
    let mut len = 8;
    let rv = r.sign(s, Some(b"data"), OutBuf::new(Some(&mut short), &mut len));
    assert_eq!((rv, len, short), (CKR_BUFFER_TOO_SMALL, 64, [0; 8]));
    let mut sig = [0u8; 80];
    let mut len = 80;
    assert_eq!(
        r.sign(s, Some(b"data"), OutBuf::new(Some(&mut sig), &mut len)),
        CKR_OK
    );
    assert_eq!(&sig[..len as usize], signature(b"k1", b"data").as_slice());
    assert_eq!(double.key_uses(key), 1);
}

#[test]
fn templates_go_out_and_attribute_values_come_back() {
    let (_, r) = remote();
    let s = logged_in(&r);
    let class = CKO_DATA.to_ne_bytes();
    let label = *b"note";
    let template = [
        CK_ATTRIBUTE {
            type_: CKA_CLASS,
            pValue: class.as_ptr() as *mut _,
            ulValueLen: class.len() as CK_ULONG,
        },
        CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: label.as_ptr() as *mut _,
            ulValueLen: 4,
        },
    ];
    let mut obj = 0;
    assert_eq!(r.create_object(s, Some(&template), &mut obj), CKR_OK);
    assert_ne!(obj, 0);
    assert_eq!(r.find_objects_init(s, Some(&template[1..])), CKR_OK);
    let (mut found, mut n) = ([0; 8], 0);
    assert_eq!(r.find_objects(s, Some(&mut found), &mut n), CKR_OK);
    assert_eq!((n, found[0]), (1, obj));
    assert_eq!(r.find_objects_final(s), CKR_OK);
    // A length query, then the value.
    let mut q = [CK_ATTRIBUTE {
        type_: CKA_LABEL,
        pValue: std::ptr::null_mut(),
        ulValueLen: 0,
    }];
    assert_eq!(r.get_attribute_value(s, obj, Some(&mut q)), CKR_OK);
    assert_eq!(q[0].ulValueLen, 4);
    let mut buf = [0u8; 16];
    q[0].pValue = buf.as_mut_ptr().cast();
    q[0].ulValueLen = 16;
    assert_eq!(r.get_attribute_value(s, obj, Some(&mut q)), CKR_OK);
    assert_eq!((q[0].ulValueLen, &buf[..4]), (4, &b"note"[..]));
    // An unknown attribute is answered on its own (§5.7).
    q[0].type_ = CKA_VENDOR_DEFINED | 1;
    q[0].ulValueLen = 16;
    assert_eq!(
        r.get_attribute_value(s, obj, Some(&mut q)),
        CKR_ATTRIBUTE_TYPE_INVALID
    );
    assert_eq!(q[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
}

#[test]
fn a_mechanism_parameter_that_may_hold_pointers_is_refused_before_sending() {
    let (double, r) = remote();
    let key = double.add_signing_key("k", b"k");
    let s = logged_in(&r);
    let mut param = [0u8; 24];
    let m = CK_MECHANISM {
        mechanism: CKM_VENDOR_DEFINED | 9,
        pParameter: param.as_mut_ptr().cast(),
        ulParameterLen: 24,
    };
    let before = double.calls(crate::functions::FunctionId::C_SignInit);
    assert_eq!(r.sign_init(s, &m, key), CKR_MECHANISM_PARAM_INVALID);
    assert_eq!(
        double.calls(crate::functions::FunctionId::C_SignInit),
        before
    );
}

#[test]
fn the_service_refuses_what_it_cannot_read() {
    let double = Double::new();
    let mut reply = Vec::new();
    // Not a request; an unknown function; a known one with bytes missing or left over.
    assert!(serve_request(&double, &[9, 9], &mut reply).is_err());
    let mut e = Encoder::new(&header(Kind::Request));
    e.u8(crate::wire::op::CALL).u32(60_000);
    assert!(serve_request(&double, &e.finish(), &mut reply).is_err());
    let mut e = Encoder::new(&header(Kind::Request));
    e.u8(crate::wire::op::CALL);
    e.u32(u32::from(function_index(FunctionId::C_CloseSession)));
    let cut = e.finish();
    assert!(matches!(
        serve_request(&double, &cut, &mut reply),
        Err(WireError::Malformed(_))
    ));
    let mut e = Encoder::new(&header(Kind::Request));
    e.u8(crate::wire::op::CALL);
    e.u32(u32::from(function_index(FunctionId::C_CloseSession)));
    e.ulong(1).u8(0);
    assert_eq!(
        serve_request(&double, &e.finish(), &mut reply),
        Err(WireError::Trailing(1))
    );
}

#[test]
fn every_function_of_the_backend_trait_is_carried() {
    // Every v2.40 function but the four the client answers itself.
    let own = [
        FunctionId::C_Initialize,
        FunctionId::C_Finalize,
        FunctionId::C_GetFunctionList,
    ];
    for f in &FunctionId::ALL[..FunctionId::V2_40_COUNT] {
        assert!(
            CARRIED.contains(f) || own.contains(f),
            "{} is not carried",
            f.name()
        );
    }
}

#[test]
fn random_bytes_and_mechanism_lists_come_back_into_the_callers_buffers() {
    let (_, r) = remote();
    let s = logged_in(&r);
    let mut out = [0u8; 5];
    assert_eq!(r.generate_random(s, Some(&mut out)), CKR_OK);
    assert_eq!(out, [7, 38, 69, 100, 131]);
    // A failed call writes nothing back.
    let mut out = [0u8; 5];
    assert_eq!(
        r.generate_random(s + 99, Some(&mut out)),
        CKR_SESSION_HANDLE_INVALID
    );
    assert_eq!(out, [0; 5]);
    // A size query, then a buffer too small: the length either way, no entries.
    let mut n = 0;
    assert_eq!(
        r.get_mechanism_list(SLOT, OutBuf::new(None, &mut n)),
        CKR_OK
    );
    assert!(n > 1, "{n}");
    let mut one = [0; 1];
    let mut m = 1;
    let rv = r.get_mechanism_list(SLOT, OutBuf::new(Some(&mut one), &mut m));
    assert_eq!((rv, m, one), (CKR_BUFFER_TOO_SMALL, n, [0]));
}
