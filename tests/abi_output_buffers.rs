//! The §5.2 output-buffer convention (size query, short buffer, exact buffer) and
//! interface discovery (`C_GetInterfaceList`, `C_GetInterface`), called through the
//! raw function list of the real `libkeywarden.so` with SoftHSM, called directly in
//! the same process, as the reference.

mod abi_hygiene_support;
mod common;
#[path = "c/support.rs"]
mod support;
/// The tests with a recording 3.0 backend (tests/c/v3_facade.c).
#[path = "c/v3_facade_tests.rs"]
mod v3_facade_tests;

use std::ffi::CStr;
use std::ptr::{self, null_mut};

use abi_hygiene_support::{fixture, UL};
use pkcs11_sys::*;
use support::{mechanism, p11, Module};

/// Drives one §5.2 output (sizes: query, short, exact) after `init`, and returns
/// the (rv, *pulLen) of each step plus the output.
fn five_two(
    m: &Module,
    s: CK_SESSION_HANDLE,
    init: &dyn Fn(&Module, CK_SESSION_HANDLE) -> CK_RV,
    call: &dyn Fn(&Module, CK_SESSION_HANDLE, *mut u8, &mut CK_ULONG) -> CK_RV,
) -> (Vec<(CK_RV, CK_ULONG)>, Vec<u8>) {
    assert_eq!(init(m, s), CKR_OK);
    let mut steps = vec![];
    let mut len: CK_ULONG = 0;
    steps.push((call(m, s, null_mut(), &mut len), len));
    let needed = len as usize;
    let mut short = vec![0u8; 1];
    len = 1;
    steps.push((call(m, s, short.as_mut_ptr(), &mut len), len));
    assert_eq!(short, [0], "nothing written into a short buffer");
    let mut out = vec![0u8; needed];
    len = UL(needed);
    steps.push((call(m, s, out.as_mut_ptr(), &mut len), len));
    out.truncate(len as usize);
    // Success ends the operation (§5.2 and each function's own section).
    len = UL(needed);
    steps.push((call(m, s, out.as_mut_ptr(), &mut len), 0));
    (steps, out)
}

#[test]
fn sign_encrypt_digest_follow_the_5_2_convention() {
    let fx = fixture();
    let (ec, aes) = (fx.ec_private, fx.aes);
    let mut data = *b"thirty-two bytes of message data";
    let d = data.as_mut_ptr();
    let sign_init = move |m: &Module, s| p11!(m, C_SignInit(s, &mut mechanism(CKM_ECDSA), ec));
    let sign = move |m: &Module, s, p, l: &mut CK_ULONG| p11!(m, C_Sign(s, d, 32, p, l));
    let mut iv = [9u8; 16];
    let ivp = iv.as_mut_ptr();
    let cbc = move || CK_MECHANISM {
        mechanism: CKM_AES_CBC_PAD,
        pParameter: ivp.cast(),
        ulParameterLen: 16,
    };
    let enc_init = move |m: &Module, s| p11!(m, C_EncryptInit(s, &mut cbc(), aes));
    let encrypt = move |m: &Module, s, p, l: &mut CK_ULONG| p11!(m, C_Encrypt(s, d, 20, p, l));
    let dig_init = |m: &Module, s| p11!(m, C_DigestInit(s, &mut mechanism(CKM_SHA256)));
    let digest = move |m: &Module, s, p, l: &mut CK_ULONG| p11!(m, C_Digest(s, d, 32, p, l));

    type Init<'a> = &'a dyn Fn(&Module, CK_SESSION_HANDLE) -> CK_RV;
    type Call<'a> = &'a dyn Fn(&Module, CK_SESSION_HANDLE, *mut u8, &mut CK_ULONG) -> CK_RV;
    let cases: [(&str, Init, Call, usize); 3] = [
        ("C_Sign ECDSA P-256", &sign_init, &sign, 64),
        ("C_Encrypt AES-CBC-PAD 20 bytes", &enc_init, &encrypt, 32),
        ("C_Digest SHA-256", &dig_init, &digest, 32),
    ];
    for (name, init, call, size) in cases {
        let (steps, out) = five_two(&fx.kw, fx.s, init, call);
        let n = UL(size);
        assert_eq!(
            steps,
            [
                (CKR_OK, n),                        // size query: length, CKR_OK
                (CKR_BUFFER_TOO_SMALL, n),          // short: needed length
                (CKR_OK, n),                        // still active: now it succeeds
                (CKR_OPERATION_NOT_INITIALIZED, 0), // and success ended it
            ],
            "{name}"
        );
        assert_eq!(out.len(), size);
        // The same sequence straight against the token gives the same answers.
        let direct = fx.hsm.open(fx.slot);
        assert_eq!(
            five_two(&fx.hsm, direct, init, call).0,
            steps,
            "{name} vs SoftHSM"
        );
    }
    // The signature made through the retried call is a valid one.
    let (steps, sig) = five_two(&fx.kw, fx.s, &sign_init, &sign);
    assert_eq!(steps[2].0, CKR_OK);
    let mut ecdsa = mechanism(CKM_ECDSA);
    assert_eq!(
        p11!(fx.kw, C_VerifyInit(fx.s, &mut ecdsa, fx.ec_public)),
        CKR_OK
    );
    let mut sig = sig;
    let rv = p11!(
        fx.kw,
        C_Verify(fx.s, d, 32, sig.as_mut_ptr(), UL(sig.len()))
    );
    assert_eq!(rv, CKR_OK);
}

/// §5.2 for the counted lists: NULL → count; too few → CKR_BUFFER_TOO_SMALL + count.
fn counted<T: Copy + Default>(f: impl Fn(*mut T, &mut CK_ULONG) -> CK_RV) -> Vec<T> {
    let mut n: CK_ULONG = 0;
    assert_eq!(f(null_mut(), &mut n), CKR_OK);
    assert!(n >= 1);
    let needed = n;
    let mut few = vec![T::default(); needed as usize - 1];
    n = needed - 1;
    // A non-NULL pointer even for an empty buffer: a zero-capacity buffer, not a query.
    let p = if few.is_empty() {
        ptr::NonNull::dangling().as_ptr()
    } else {
        few.as_mut_ptr()
    };
    assert_eq!(f(p, &mut n), CKR_BUFFER_TOO_SMALL);
    assert_eq!(n, needed, "BUFFER_TOO_SMALL reports the needed count");
    let mut all = vec![T::default(); needed as usize + 2];
    n = UL(all.len());
    assert_eq!(f(all.as_mut_ptr(), &mut n), CKR_OK);
    assert_eq!(n, needed, "success reports the exact count");
    all.truncate(n as usize);
    all
}

#[test]
fn slot_mechanism_and_interface_lists_follow_the_5_2_convention() {
    let fx = fixture();
    let kw = &fx.kw;
    let slots = counted(|p, n| p11!(kw, C_GetSlotList(CK_FALSE, p, n)));
    assert!(slots.contains(&fx.slot));
    assert!(slots.len() >= 2, "SoftHSM also shows a free slot");
    let mechs = counted(|p, n| p11!(kw, C_GetMechanismList(fx.slot, p, n)));
    assert!(mechs.contains(&CKM_ECDSA) && mechs.contains(&CKM_SHA256));
    let mut direct = 0;
    assert_eq!(
        p11!(fx.hsm, C_GetMechanismList(fx.slot, null_mut(), &mut direct)),
        CKR_OK
    );
    assert_eq!(UL(mechs.len()), direct);

    // Keywarden's own output: the interface list, written by Keywarden itself.
    // SAFETY: the exported symbol has the C_GetInterfaceList signature (v3.0 §5.4).
    let list: libloading::Symbol<unsafe extern "C" fn(CK_INTERFACE_PTR, CK_ULONG_PTR) -> CK_RV> =
        unsafe { kw.lib.get(b"C_GetInterfaceList\0") }.unwrap();
    let empty = CK_INTERFACE {
        pInterfaceName: null_mut(),
        pFunctionList: null_mut(),
        flags: 0,
    };
    let mut n: CK_ULONG = 0;
    assert_eq!(unsafe { list(null_mut(), &mut n) }, CKR_OK);
    assert_eq!(
        n, 1,
        "SoftHSM 2.6 is a 2.40 token: only the 2.40 interface is offered"
    );
    let mut one = [empty];
    n = 0;
    assert_eq!(
        unsafe { list(one.as_mut_ptr(), &mut n) },
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(n, 1);
    assert!(
        one[0].pFunctionList.is_null(),
        "nothing copied into a short buffer"
    );
    n = 1;
    assert_eq!(unsafe { list(one.as_mut_ptr(), &mut n) }, CKR_OK);
    assert_eq!(interface_version(&one[0]), (2, 40));
    assert_eq!(
        one[0].pFunctionList.cast_const(),
        ptr::from_ref(kw.f).cast()
    );
}

fn interface_version(i: &CK_INTERFACE) -> (u8, u8) {
    // SAFETY: a returned interface names a NUL-terminated string and a function list
    // whose first member is its CK_VERSION.
    unsafe {
        assert_eq!(CStr::from_ptr(i.pInterfaceName.cast()), c"PKCS 11");
        let v = *i.pFunctionList.cast::<CK_VERSION>();
        (v.major, v.minor)
    }
}

type GetInterface =
    unsafe extern "C" fn(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS) -> CK_RV;

/// `C_GetInterface(name, version, &out, flags)`; the version of the list on success.
fn get_interface(
    m: &Module,
    name: Option<&CStr>,
    version: Option<(u8, u8)>,
    flags: CK_FLAGS,
) -> Result<(u8, u8), CK_RV> {
    // SAFETY: the exported symbol has the C_GetInterface signature (v3.0 §5.4).
    let f: libloading::Symbol<GetInterface> = unsafe { m.lib.get(b"C_GetInterface\0") }.unwrap();
    let name = name.map_or(null_mut(), |n| n.as_ptr().cast_mut().cast());
    let mut v = version.map(|(major, minor)| CK_VERSION { major, minor });
    let vp = v.as_mut().map_or(null_mut(), ptr::from_mut);
    let mut out: CK_INTERFACE_PTR = null_mut();
    match unsafe { f(name, vp, &mut out, flags) } {
        // SAFETY: on CKR_OK `out` points to one of the module's static interfaces.
        CKR_OK => Ok(interface_version(unsafe { &*out })),
        rv => Err(rv),
    }
}

#[test]
fn get_interface_by_name_version_and_flags() {
    let fx = fixture();
    let kw = &fx.kw;
    assert_eq!(get_interface(kw, None, None, 0), Ok((2, 40)), "default");
    assert_eq!(get_interface(kw, Some(c"PKCS 11"), None, 0), Ok((2, 40)));
    assert_eq!(
        get_interface(kw, Some(c"PKCS 11"), Some((2, 40)), 0),
        Ok((2, 40))
    );
    assert_eq!(get_interface(kw, None, Some((2, 40)), 0), Ok((2, 40)));
    // Not offered while the backend is a 2.40 token (src/ffi/general.rs).
    let bad = Err(CKR_ARGUMENTS_BAD);
    assert_eq!(get_interface(kw, Some(c"PKCS 11"), Some((3, 0)), 0), bad);
    assert_eq!(get_interface(kw, Some(c"Vendor thing"), None, 0), bad);
    assert_eq!(get_interface(kw, Some(c""), None, 0), bad);
    assert_eq!(get_interface(kw, None, Some((9, 9)), 0), bad);
    assert_eq!(get_interface(kw, None, None, CKF_INTERFACE_FORK_SAFE), bad);
    // SAFETY: as above; ppInterface NULL is the argument under test.
    let f: libloading::Symbol<GetInterface> = unsafe { kw.lib.get(b"C_GetInterface\0") }.unwrap();
    assert_eq!(
        unsafe { f(null_mut(), null_mut(), null_mut(), 0) },
        CKR_ARGUMENTS_BAD
    );
}
