//! Shared helpers for the gateway tests: raw PKCS#11 calls and error codes.
//!
//! `cryptoki` turns every return code into its own error type and hides the per-call
//! conventions (size queries, short buffers, per-attribute `ulValueLen`), so checks at
//! that level go through the module's `CK_FUNCTION_LIST` directly. dlopen of a path that
//! `cryptoki` already loaded returns the same instance, so handles from `cryptoki`
//! sessions are valid here.
#![allow(dead_code)]

use std::path::Path;

use pkcs11_sys::*;

/// One module's function list, kept alive by its library handle.
pub struct Raw {
    _lib: libloading::Library,
    list: CK_FUNCTION_LIST_PTR,
}

impl Raw {
    pub fn open(path: &Path) -> Raw {
        // SAFETY: loading a PKCS#11 module runs its constructors; both modules under
        // test are trusted builds.
        let lib = unsafe { libloading::Library::new(path) }.expect("dlopen module");
        let mut list: CK_FUNCTION_LIST_PTR = std::ptr::null_mut();
        // SAFETY: the symbol has the C_GetFunctionList signature of the specification.
        let rv = unsafe {
            let get: libloading::Symbol<unsafe extern "C" fn(CK_FUNCTION_LIST_PTR_PTR) -> CK_RV> =
                lib.get(b"C_GetFunctionList\0").expect("C_GetFunctionList");
            get(&mut list)
        };
        assert_eq!(rv, CKR_OK, "C_GetFunctionList");
        assert!(!list.is_null());
        Raw { _lib: lib, list }
    }

    pub fn f(&self) -> &CK_FUNCTION_LIST {
        // SAFETY: a module's function list is static and outlives the library handle we hold.
        unsafe { &*self.list }
    }
}

/// `raw!(r, C_Foo(a, b))` calls `C_Foo` from `r`'s function list (unsafe: the caller
/// passes pointers that are valid for the call). The arguments are evaluated inside the
/// unsafe block on purpose: they are the raw pointers the call is about.
#[macro_export]
macro_rules! raw {
    ($r:expr, $f:ident ( $($a:expr),* $(,)? )) => {
        {
            #[allow(clippy::macro_metavars_in_unsafe)]
            let rv = unsafe { ($r.f().$f.expect(stringify!($f)))($($a),*) };
            rv
        }
    };
}

/// The specification name of a return code, so failures print readably.
pub fn name(rv: CK_RV) -> String {
    keywarden::abi::rv_name(rv).into_owned()
}

/// A template entry pointing at `buf` (which must outlive the call).
pub fn attr(type_: CK_ATTRIBUTE_TYPE, buf: &mut [u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_,
        pValue: if buf.is_empty() {
            std::ptr::null_mut()
        } else {
            buf.as_mut_ptr().cast()
        },
        ulValueLen: buf.len() as CK_ULONG,
    }
}

/// A template entry for a `CK_ULONG` value (class, key type, value length).
pub fn attr_ulong(type_: CK_ATTRIBUTE_TYPE, v: &mut CK_ULONG) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_,
        pValue: (v as *mut CK_ULONG).cast(),
        ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
    }
}

/// A mechanism without parameters.
pub fn mech(mechanism: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    }
}

/// The slot of the test token, found by label through `r` itself.
pub fn slot(r: &Raw) -> CK_SLOT_ID {
    let mut slots = [0 as CK_SLOT_ID; 16];
    let mut n = slots.len() as CK_ULONG;
    assert_eq!(
        raw!(r, C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut n)),
        CKR_OK
    );
    for &s in &slots[..n as usize] {
        // SAFETY: CK_TOKEN_INFO is plain data; all-zero is a valid value.
        let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
        if raw!(r, C_GetTokenInfo(s, &mut info)) == CKR_OK && info.label.starts_with(b"test ") {
            return s;
        }
    }
    panic!("test token not found");
}

/// A read-write session on `slot`, logged in as the user unless someone already is.
pub fn user_session(r: &Raw, slot: CK_SLOT_ID) -> CK_SESSION_HANDLE {
    let mut h = 0;
    let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
    assert_eq!(
        raw!(
            r,
            C_OpenSession(slot, flags, std::ptr::null_mut(), None, &mut h)
        ),
        CKR_OK
    );
    let mut pin = *b"1234";
    let rv = raw!(r, C_Login(h, CKU_USER, pin.as_mut_ptr(), 4));
    assert!(
        rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN,
        "C_Login: {}",
        name(rv)
    );
    h
}

/// A session AES-256 key for encrypt/decrypt (SoftHSM defaults make it unextractable).
pub fn aes_key(r: &Raw, h: CK_SESSION_HANDLE) -> CK_OBJECT_HANDLE {
    let mut len: CK_ULONG = 32;
    let (mut t, mut f) = ([CK_TRUE], [CK_FALSE]);
    let mut tmpl = [
        attr_ulong(CKA_VALUE_LEN, &mut len),
        attr(CKA_TOKEN, &mut f),
        attr(CKA_ENCRYPT, &mut t),
        attr(CKA_DECRYPT, &mut t),
    ];
    let mut m = mech(CKM_AES_KEY_GEN);
    let mut key = 0;
    let rv = raw!(
        r,
        C_GenerateKey(
            h,
            &mut m,
            tmpl.as_mut_ptr(),
            tmpl.len() as CK_ULONG,
            &mut key
        )
    );
    assert_eq!(rv, CKR_OK, "C_GenerateKey: {}", name(rv));
    key
}

/// The PKCS#11 code of a failed `cryptoki` call; panics if it succeeded or failed
/// for another reason (so a test asserting a code cannot pass by accident).
pub fn code<T>(r: cryptoki::error::Result<T>) -> cryptoki::error::RvError {
    match r.err() {
        Some(cryptoki::error::Error::Pkcs11(rv, _)) => rv,
        Some(e) => panic!("expected a PKCS#11 error, got {e:?}"),
        None => panic!("expected a PKCS#11 error, the call succeeded"),
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
