//! C ABI hygiene, called through the raw function list of the real `libkeywarden.so`:
//! NULL pointers, NULL-with-zero-length buffers, the §5.2 output-buffer convention,
//! interface discovery and the per-attribute rules of `C_GetAttributeValue`.
//!
//! Where Keywarden forwards, the reference is SoftHSM called directly in the same
//! process (one SoftHSM instance; the test initialises it first, so Keywarden finds it
//! already initialised): Keywarden must answer as the token does.

mod common;
#[path = "c/support.rs"]
mod support;
/// The tests with a recording 3.0 backend (tests/c/v3_facade.c).
#[path = "c/v3_facade_tests.rs"]
mod v3_facade_tests;

use std::ffi::CStr;
use std::path::Path;
use std::ptr::{self, null_mut};

use pkcs11_sys::*;
use support::{attr, mechanism, p11, Module};

const UL: fn(usize) -> CK_ULONG = |n| n as CK_ULONG;

struct Fixture {
    _env: common::TestEnv,
    kw: Module,
    hsm: Module,
    slot: CK_SLOT_ID,
    /// A logged-in Keywarden session that stays open (login is per application).
    s: CK_SESSION_HANDLE,
    ec_public: CK_OBJECT_HANDLE,
    ec_private: CK_OBJECT_HANDLE,
    aes: CK_OBJECT_HANDLE,
}

fn fixture() -> Fixture {
    let env = common::TestEnv::new();
    let hsm = Module::load(Path::new(common::SOFTHSM_MODULE));
    hsm.init();
    let kw = Module::load(&common::keywarden_module());
    kw.init();
    let slot = kw.slot(common::TOKEN_LABEL);
    let s = kw.open(slot);
    kw.login(s, common::USER_PIN);
    let (ec_public, ec_private) = kw.ec_key_pair(s);
    let aes = aes_key(&kw, s);
    Fixture {
        _env: env,
        kw,
        hsm,
        slot,
        s,
        ec_public,
        ec_private,
        aes,
    }
}

fn aes_key(m: &Module, s: CK_SESSION_HANDLE) -> CK_OBJECT_HANDLE {
    let mut len = 32 as CK_ULONG;
    let (mut yes1, mut yes2, mut yes3) = (CK_TRUE, CK_TRUE, CK_TRUE);
    let mut t = [
        CK_ATTRIBUTE {
            type_: CKA_VALUE_LEN,
            pValue: ptr::from_mut(&mut len).cast(),
            ulValueLen: UL(std::mem::size_of::<CK_ULONG>()),
        },
        attr(CKA_ENCRYPT, std::slice::from_mut(&mut yes1)),
        attr(CKA_DECRYPT, std::slice::from_mut(&mut yes2)),
        attr(CKA_SIGN, std::slice::from_mut(&mut yes3)),
    ];
    let mut mech = mechanism(CKM_AES_KEY_GEN);
    let mut h = 0;
    assert_eq!(
        p11!(m, C_GenerateKey(s, &mut mech, t.as_mut_ptr(), 4, &mut h)),
        CKR_OK
    );
    h
}

impl Fixture {
    /// Runs `case` on a fresh session of Keywarden and of SoftHSM and returns both codes.
    fn both<R>(&self, case: impl Fn(&Module, CK_SESSION_HANDLE) -> R) -> (R, R) {
        let run = |m: &Module| {
            let s = m.open(self.slot);
            let rv = case(m, s);
            assert_eq!(p11!(m, C_CloseSession(s)), CKR_OK);
            rv
        };
        (run(&self.kw), run(&self.hsm))
    }
}

#[test]
fn null_required_pointers_are_arguments_bad() {
    let fx = fixture();
    let kw = &fx.kw;
    // SAFETY: the exported symbol has the C_GetFunctionList signature.
    let rv = unsafe {
        let get: libloading::Symbol<unsafe extern "C" fn(CK_FUNCTION_LIST_PTR_PTR) -> CK_RV> =
            kw.lib.get(b"C_GetFunctionList\0").unwrap();
        get(null_mut())
    };
    assert_eq!(rv, CKR_ARGUMENTS_BAD, "C_GetFunctionList(NULL)");
    assert_eq!(p11!(kw, C_GetInfo(null_mut())), CKR_ARGUMENTS_BAD);
    assert_eq!(
        p11!(kw, C_GetSlotList(CK_TRUE, null_mut(), null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        p11!(kw, C_GetTokenInfo(fx.slot, null_mut())),
        CKR_ARGUMENTS_BAD
    );
    let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
    let rv = p11!(
        kw,
        C_OpenSession(fx.slot, flags, null_mut(), None, null_mut())
    );
    assert_eq!(rv, CKR_ARGUMENTS_BAD, "C_OpenSession(phSession = NULL)");
    assert_eq!(
        p11!(kw, C_GetSessionInfo(fx.s, null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        p11!(kw, C_SignInit(fx.s, null_mut(), fx.ec_private)),
        CKR_ARGUMENTS_BAD
    );
    // NULL with a non-zero count never reaches the token (it would read 3 attributes).
    assert_eq!(
        p11!(kw, C_FindObjectsInit(fx.s, null_mut(), 3)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        p11!(kw, C_GenerateRandom(fx.s, null_mut(), 16)),
        CKR_ARGUMENTS_BAD
    );

    let mut ecdsa = mechanism(CKM_ECDSA);
    let mut digest = [7u8; 32];
    assert_eq!(
        p11!(kw, C_SignInit(fx.s, &mut ecdsa, fx.ec_private)),
        CKR_OK
    );
    let rv = p11!(
        kw,
        C_Sign(fx.s, digest.as_mut_ptr(), 32, null_mut(), null_mut())
    );
    assert_eq!(rv, CKR_ARGUMENTS_BAD, "C_Sign(pulSignatureLen = NULL)");
    // The refusals left the module in working order.
    // SAFETY: CK_INFO is plain old data.
    let mut info: CK_INFO = unsafe { std::mem::zeroed() };
    assert_eq!(p11!(kw, C_GetInfo(&mut info)), CKR_OK);
    assert_eq!(
        info.cryptokiVersion.major, 2,
        "SoftHSM 2.6's answer, forwarded"
    );
}

/// PKCS#11 v2.40 §5.12 (C_Sign): "A call to C_Sign always terminates the active
/// signing operation unless it returns CKR_BUFFER_TOO_SMALL or is a successful call
/// [...] to determine the length of the buffer needed". Keywarden refuses a NULL
/// pulSignatureLen before the token sees it, so the token's operation state after
/// the refusal is whatever the token leaves after refusing the same call: measured,
/// SoftHSM 2.6 keeps the operation active (a new C_SignInit gets
/// CKR_OPERATION_ACTIVE) both directly and through Keywarden.
#[test]
fn a_refused_sign_leaves_the_operation_as_the_token_would() {
    let fx = fixture();
    let key = fx.ec_private;
    let (kw, hsm) = fx.both(|m, s| {
        let mut ecdsa = mechanism(CKM_ECDSA);
        let mut digest = [7u8; 32];
        assert_eq!(p11!(m, C_SignInit(s, &mut ecdsa, key)), CKR_OK);
        let rv = p11!(
            m,
            C_Sign(s, digest.as_mut_ptr(), 32, null_mut(), null_mut())
        );
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        let again = p11!(m, C_SignInit(s, &mut ecdsa, key));
        let mut sig = [0u8; 64];
        let mut len = 64;
        [
            again,
            p11!(
                m,
                C_Sign(s, digest.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut len)
            ),
        ]
    });
    assert_eq!(hsm, [CKR_OPERATION_ACTIVE, CKR_OK], "SoftHSM 2.6 directly");
    assert_eq!(kw, hsm, "Keywarden: {kw:x?}, SoftHSM: {hsm:x?}");
}

/// A buffer that is NULL with a length of 0 is handed to the token as such
/// (docs/abi-conventions.md), so the answers, and the operation state after them
/// (probed with a valid follow-up call), are the token's. SoftHSM 2.6 refuses all of
/// these with CKR_ARGUMENTS_BAD and keeps the operation; that they reach the token at
/// all is shown with a recording backend in `forwarding_is_observed_at_the_backend`.
#[test]
fn null_with_zero_length_reaches_the_token_as_is() {
    let fx = fixture();
    let (ec, aes) = (fx.ec_private, fx.aes);
    let mut buf = [1u8; 16];
    let b = buf.as_mut_ptr();
    let n = null_mut();
    let init = |m: &Module, s, mut mech: CK_MECHANISM| {
        let rv = match mech.mechanism {
            CKM_SHA256 => p11!(m, C_DigestInit(s, &mut mech)),
            CKM_AES_CMAC => p11!(m, C_SignInit(s, &mut mech, aes)),
            _ => p11!(m, C_EncryptInit(s, &mut mech, aes)),
        };
        assert_eq!(rv, CKR_OK);
    };
    let mut iv = [0u8; 16];
    let cbc = CK_MECHANISM {
        mechanism: CKM_AES_CBC_PAD,
        pParameter: iv.as_mut_ptr().cast(),
        ulParameterLen: 16,
    };
    let names = [
        "C_DigestUpdate(NULL, 0)",
        "C_Digest(NULL, 0, NULL, &len)",
        "C_SignUpdate(NULL, 0)", // AES-CMAC: SoftHSM 2.6 has no multi-part ECDSA
        "C_EncryptUpdate(NULL, 0, NULL, &len)",
        "C_Encrypt(NULL, 0, NULL, &len)",
        "C_GenerateRandom(NULL, 0)",
        "C_SeedRandom(NULL, 0)",
        "C_Login(NULL, 0)",
        "C_CreateObject(NULL, 0)",
        "C_CopyObject(NULL, 0)",
        "C_GetAttributeValue(NULL, 0)",
        "C_SetAttributeValue(NULL, 0)",
    ];
    // Each case: [the NULL-with-0 call, a valid follow-up (0 where there is none)].
    let case = |i: usize, m: &Module, s| -> [CK_RV; 2] {
        let (mut len, mut h) = (0, 0);
        match i {
            0 => {
                init(m, s, mechanism(CKM_SHA256));
                [
                    p11!(m, C_DigestUpdate(s, n, 0)),
                    p11!(m, C_DigestUpdate(s, b, 4)),
                ]
            }
            1 => {
                init(m, s, mechanism(CKM_SHA256));
                let first = p11!(m, C_Digest(s, n, 0, n, &mut len));
                [first, p11!(m, C_Digest(s, b, 4, n, &mut len))]
            }
            2 => {
                init(m, s, mechanism(CKM_AES_CMAC));
                [
                    p11!(m, C_SignUpdate(s, n, 0)),
                    p11!(m, C_SignUpdate(s, b, 4)),
                ]
            }
            3 => {
                init(m, s, cbc);
                let first = p11!(m, C_EncryptUpdate(s, n, 0, n, &mut len));
                [first, p11!(m, C_EncryptUpdate(s, b, 16, n, &mut len))]
            }
            4 => {
                init(m, s, cbc);
                let first = p11!(m, C_Encrypt(s, n, 0, n, &mut len));
                [first, p11!(m, C_Encrypt(s, b, 16, n, &mut len))]
            }
            5 => [
                p11!(m, C_GenerateRandom(s, n, 0)),
                p11!(m, C_GenerateRandom(s, b, 4)),
            ],
            6 => [p11!(m, C_SeedRandom(s, n, 0)), 0],
            7 => [p11!(m, C_Login(s, CKU_USER, n, 0)), 0],
            8 => [p11!(m, C_CreateObject(s, n.cast(), 0, &mut h)), 0],
            9 => [p11!(m, C_CopyObject(s, aes, n.cast(), 0, &mut h)), 0],
            10 => [p11!(m, C_GetAttributeValue(s, ec, n.cast(), 0)), 0],
            _ => [p11!(m, C_SetAttributeValue(s, ec, n.cast(), 0)), 0],
        }
    };
    let mut table = String::new();
    for (i, name) in names.iter().enumerate() {
        let (kw, hsm) = fx.both(|m, s| case(i, m, s));
        table += &format!("{name}: keywarden {kw:x?}, softhsm {hsm:x?}\n");
        assert_eq!(kw, hsm, "{name}: Keywarden must answer as the token does");
    }
    println!("{table}");
}

/// Counts every object `C_FindObjectsInit(template)` lets a session see.
fn count_objects(m: &Module, s: CK_SESSION_HANDLE, template: &mut [CK_ATTRIBUTE]) -> usize {
    let p = if template.is_empty() {
        null_mut()
    } else {
        template.as_mut_ptr()
    };
    assert_eq!(p11!(m, C_FindObjectsInit(s, p, UL(template.len()))), CKR_OK);
    let mut found = [0; 64];
    let mut n = 0;
    assert_eq!(
        p11!(m, C_FindObjects(s, found.as_mut_ptr(), 64, &mut n)),
        CKR_OK
    );
    assert_eq!(p11!(m, C_FindObjectsFinal(s)), CKR_OK);
    n as usize
}

#[test]
fn find_objects_with_a_null_template_and_zero_count_finds_everything() {
    let fx = fixture();
    // Public key, private key, AES key: all session objects of this application.
    let mut class = CKO_SECRET_KEY;
    let mut secret = [CK_ATTRIBUTE {
        type_: CKA_CLASS,
        pValue: ptr::from_mut(&mut class).cast(),
        ulValueLen: UL(std::mem::size_of::<CK_OBJECT_CLASS>()),
    }];
    let everything = count_objects(&fx.kw, fx.s, &mut []);
    assert_eq!(
        everything, 3,
        "NULL template with count 0 matches every object"
    );
    assert_eq!(count_objects(&fx.kw, fx.s, &mut secret), 1);
    let direct = fx.hsm.open(fx.slot);
    assert_eq!(count_objects(&fx.hsm, direct, &mut []), everything);
}

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

#[test]
fn get_attribute_value_applies_the_per_attribute_rules() {
    let fx = fixture();
    let key = fx.ec_private;
    let run = |m: &Module, s| {
        let mut value = [0xeeu8; 64];
        let mut label = [0u8; 32];
        let mut key_type = [0u8; std::mem::size_of::<CK_KEY_TYPE>()];
        let mut t = [
            attr(CKA_VALUE, &mut value), // sensitive: must not come out
            attr(CKA_LABEL, &mut label), // still filled after the error
            attr(CKA_KEY_TYPE, &mut key_type),
            CK_ATTRIBUTE {
                type_: CKA_EC_PARAMS,
                pValue: null_mut(),
                ulValueLen: 0,
            },
        ];
        let rv = p11!(m, C_GetAttributeValue(s, key, t.as_mut_ptr(), 4));
        let lens = t.map(|a| a.ulValueLen);
        (
            rv,
            lens,
            value,
            label[..6].to_vec(),
            CK_KEY_TYPE::from_ne_bytes(key_type),
        )
    };
    let kw = run(&fx.kw, fx.s);
    let (rv, lens, value, label, key_type) = kw.clone();
    assert_eq!(rv, CKR_ATTRIBUTE_SENSITIVE);
    assert_eq!(lens[0], CK_UNAVAILABLE_INFORMATION, "sensitive value");
    assert_eq!(value, [0xee; 64], "sensitive buffer untouched");
    assert_eq!((lens[1], label.as_slice()), (6, &b"abi-ec"[..]));
    assert_eq!(
        (lens[2], key_type),
        (UL(std::mem::size_of::<CK_KEY_TYPE>()), CKK_EC)
    );
    assert_eq!(
        lens[3],
        UL(support::P256_OID.len()),
        "NULL pValue: length only"
    );
    let direct = fx.hsm.open(fx.slot);
    assert_eq!(
        run(&fx.hsm, direct),
        kw,
        "Keywarden and SoftHSM fill the template alike"
    );
}
