//! Part of tests/abi_output_buffers.rs: Keywarden in front of tests/c/v3_facade.c, a
//! recording PKCS#11 3.0 front for SoftHSM. It shows what SoftHSM alone cannot: the
//! 3.0 interface when the backend has one, and what actually reaches the backend.

use std::ptr::{self, null_mut};

use pkcs11_sys::*;

use super::support::{self, mechanism, Module};
use super::{common, get_interface, interface_version, GetInterface};
use crate::p11;

/// How tests/c/v3_facade.c saw a wrapped function called.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
struct Record {
    calls: std::ffi::c_ulong,
    last_ptr: *const u8,
    last_len: std::ffi::c_ulong,
}

/// Keywarden in front of the recording 3.0 facade (itself in front of SoftHSM).
struct FacadeFixture {
    _env: common::TestEnv,
    kw: Module,
    facade: Module,
}

impl FacadeFixture {
    fn new() -> FacadeFixture {
        let env = common::TestEnv::new();
        let (so, conf) =
            support::facade_backend(env.path(), &env.keywarden_conf, common::SOFTHSM_MODULE);
        // Before the first Keywarden call: the offered interfaces follow this backend.
        std::env::set_var("KEYWARDEN_CONF", &conf);
        let kw = Module::load(&common::keywarden_module());
        kw.init();
        // The same dlopen handle Keywarden holds (same path), for reading the records.
        let facade = Module::load(&so);
        FacadeFixture {
            _env: env,
            kw,
            facade,
        }
    }

    fn record(&self, name: &str) -> Record {
        let symbol = format!("facade_{name}\0");
        // SAFETY: the facade defines these as `struct facade_record` (repr(C) above).
        unsafe {
            **self
                .facade
                .lib
                .get::<*const Record>(symbol.as_bytes())
                .unwrap()
        }
    }

    fn session(&self) -> CK_SESSION_HANDLE {
        let s = self.kw.open(self.kw.slot(common::TOKEN_LABEL));
        self.kw.login(s, common::USER_PIN);
        s
    }
}

/// With a 3.0 backend Keywarden offers 3.0 (and makes it the default); 3.0 functions
/// the token lacks and the unclassified message functions answer
/// CKR_FUNCTION_NOT_SUPPORTED, the latter without reaching the token.
#[test]
fn v3_interface_with_a_3_0_backend() {
    let fx = FacadeFixture::new();
    let kw = &fx.kw;
    assert_eq!(
        get_interface(kw, None, None, 0),
        Ok((3, 0)),
        "default is the newest"
    );
    assert_eq!(
        get_interface(kw, Some(c"PKCS 11"), Some((3, 0)), 0),
        Ok((3, 0))
    );
    assert_eq!(
        get_interface(kw, Some(c"PKCS 11"), Some((2, 40)), 0),
        Ok((2, 40))
    );
    assert_eq!(
        get_interface(kw, Some(c"PKCS 11 "), None, 0),
        Err(CKR_ARGUMENTS_BAD)
    );
    let list = counted_interfaces(kw);
    assert_eq!(list, [(3, 0), (2, 40)]);

    // The 3.0 list itself.
    // SAFETY: the exported symbol has the C_GetInterface signature; version 3.0 asked.
    let f3: &CK_FUNCTION_LIST_3_0 = unsafe {
        let f: libloading::Symbol<GetInterface> = kw.lib.get(b"C_GetInterface\0").unwrap();
        let mut out: CK_INTERFACE_PTR = null_mut();
        let mut v = CK_VERSION { major: 3, minor: 0 };
        assert_eq!(f(null_mut(), &mut v, &mut out, 0), CKR_OK);
        &*(*out).pFunctionList.cast::<CK_FUNCTION_LIST_3_0>()
    };
    let s = fx.session();
    let mut info: CK_SESSION_INFO = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { f3.C_GetSessionInfo.unwrap()(s, &mut info) },
        CKR_OK
    );
    let mut pin = *b"1234";
    let mut user = *b"user";
    // SAFETY (all calls below): valid pointers or NULL with zero lengths.
    unsafe {
        let rv = f3.C_LoginUser.unwrap()(s, CKU_USER, pin.as_mut_ptr(), 4, user.as_mut_ptr(), 4);
        assert_eq!(
            rv, CKR_FUNCTION_NOT_SUPPORTED,
            "C_LoginUser: the token has none"
        );
        // Forwarded: the token's stub answers and counts.
        assert_eq!(f3.C_SessionCancel.unwrap()(s, 0), CKR_OK);
        assert_eq!(fx.record("session_cancel").calls, 1);
        // Unclassified: refused without asking the token, whose stub would say CKR_OK.
        let mut m = mechanism(CKM_AES_GCM);
        let n = null_mut();
        let nu: *mut CK_ULONG = null_mut();
        let refused = [
            f3.C_MessageEncryptInit.unwrap()(s, &mut m, 1),
            f3.C_EncryptMessage.unwrap()(s, n, 0, n.cast(), 0, n.cast(), 0, n.cast(), nu),
            f3.C_EncryptMessageBegin.unwrap()(s, n, 0, n.cast(), 0),
            f3.C_EncryptMessageNext.unwrap()(s, n, 0, n.cast(), 0, n.cast(), nu, 0),
            f3.C_MessageEncryptFinal.unwrap()(s),
            f3.C_MessageDecryptInit.unwrap()(s, &mut m, 1),
            f3.C_DecryptMessage.unwrap()(s, n, 0, n.cast(), 0, n.cast(), 0, n.cast(), nu),
            f3.C_DecryptMessageBegin.unwrap()(s, n, 0, n.cast(), 0),
            f3.C_DecryptMessageNext.unwrap()(s, n, 0, n.cast(), 0, n.cast(), nu, 0),
            f3.C_MessageDecryptFinal.unwrap()(s),
            f3.C_MessageSignInit.unwrap()(s, &mut m, 1),
            f3.C_SignMessage.unwrap()(s, n, 0, n.cast(), 0, n.cast(), nu),
            f3.C_SignMessageBegin.unwrap()(s, n, 0),
            f3.C_SignMessageNext.unwrap()(s, n, 0, n.cast(), 0, n.cast(), nu),
            f3.C_MessageSignFinal.unwrap()(s),
            f3.C_MessageVerifyInit.unwrap()(s, &mut m, 1),
            f3.C_VerifyMessage.unwrap()(s, n, 0, n.cast(), 0, n.cast(), 0),
            f3.C_VerifyMessageBegin.unwrap()(s, n, 0),
            f3.C_VerifyMessageNext.unwrap()(s, n, 0, n.cast(), 0, n.cast(), 0),
            f3.C_MessageVerifyFinal.unwrap()(s),
        ];
        assert_eq!(refused, [CKR_FUNCTION_NOT_SUPPORTED; 20]);
        assert_eq!(
            fx.record("message").calls,
            0,
            "message calls reached the token"
        );
    }
}

fn counted_interfaces(kw: &Module) -> Vec<(u8, u8)> {
    let empty = CK_INTERFACE {
        pInterfaceName: null_mut(),
        pFunctionList: null_mut(),
        flags: 0,
    };
    // SAFETY: the exported symbol has the C_GetInterfaceList signature.
    let f: libloading::Symbol<unsafe extern "C" fn(CK_INTERFACE_PTR, CK_ULONG_PTR) -> CK_RV> =
        unsafe { kw.lib.get(b"C_GetInterfaceList\0") }.unwrap();
    let mut n: CK_ULONG = 0;
    assert_eq!(unsafe { f(null_mut(), &mut n) }, CKR_OK);
    let mut list = vec![empty; n as usize];
    let mut short = n - 1;
    assert_eq!(
        unsafe { f(list.as_mut_ptr(), &mut short) },
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(short, n);
    assert_eq!(unsafe { f(list.as_mut_ptr(), &mut n) }, CKR_OK);
    list.iter().map(interface_version).collect()
}

/// What reaches the token, seen from the token's side: a NULL buffer with length 0
/// arrives as NULL and 0; the caller's own buffers arrive as the same pointers (no
/// copies); calls Keywarden refuses for a NULL required pointer never arrive, except
/// an operation's data call, which the token answers itself so that its operation
/// ends or stays active as it would directly (docs/abi-conventions.md).
#[test]
fn forwarding_is_observed_at_the_backend() {
    let fx = FacadeFixture::new();
    let kw = &fx.kw;
    let s = fx.session();
    let mut sha = mechanism(CKM_SHA256);
    assert_eq!(p11!(kw, C_DigestInit(s, &mut sha)), CKR_OK);
    let rv = p11!(kw, C_DigestUpdate(s, null_mut(), 0));
    let seen = fx.record("digest_update");
    assert_eq!(
        (seen.calls, seen.last_ptr, seen.last_len),
        (1, ptr::null(), 0)
    );
    assert_eq!(rv, CKR_ARGUMENTS_BAD, "SoftHSM's own answer to NULL, 0");
    let mut data = [3u8; 8];
    assert_eq!(p11!(kw, C_DigestUpdate(s, data.as_mut_ptr(), 8)), CKR_OK);
    let seen = fx.record("digest_update");
    assert_eq!(
        (seen.calls, seen.last_ptr, seen.last_len),
        (2, data.as_ptr(), 8)
    );

    assert_eq!(
        p11!(kw, C_GenerateRandom(s, null_mut(), 16)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        fx.record("generate_random").calls,
        0,
        "NULL with length 16 forwarded"
    );
    p11!(kw, C_GenerateRandom(s, null_mut(), 0));
    assert_eq!(
        fx.record("generate_random").calls,
        1,
        "NULL with length 0 not forwarded"
    );

    // A fresh session: the digest above is still active on `s`.
    let s = fx.session();
    let (_, private) = kw.ec_key_pair(s);
    assert_eq!(
        p11!(kw, C_SignInit(s, &mut mechanism(CKM_ECDSA), private)),
        CKR_OK
    );
    let rv = p11!(kw, C_Sign(s, data.as_mut_ptr(), 8, null_mut(), null_mut()));
    assert_eq!(rv, CKR_ARGUMENTS_BAD, "SoftHSM's own answer");
    assert_eq!(
        fx.record("sign").calls,
        1,
        "a data call refused for a NULL pulSignatureLen goes to the token as it came"
    );
    let mut len: CK_ULONG = 0;
    assert_eq!(
        p11!(kw, C_Sign(s, data.as_mut_ptr(), 8, null_mut(), &mut len)),
        CKR_OK
    );
    let seen = fx.record("sign");
    assert_eq!(seen.calls, 2);
    assert_eq!(
        seen.last_ptr,
        ptr::from_mut(&mut len).cast_const().cast(),
        "length cell"
    );
}

/// `C_Initialize` with the application's mutex functions and no
/// `CKF_OS_LOCKING_OK` (§5.4 case 3; google/pkcs11test `Init.InitArgsMyLocks`)
/// is accepted, as SoftHSM accepts it directly; the backend is initialised with
/// Keywarden's own arguments (OS locking, no callbacks), never the application's,
/// and the application's functions are never called.
#[test]
fn application_mutexes_without_os_locking_are_accepted_and_not_passed_on() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn create(_: CK_VOID_PTR_PTR) -> CK_RV {
        CALLS.fetch_add(1, Ordering::SeqCst);
        CKR_OK
    }
    unsafe extern "C" fn other(_: CK_VOID_PTR) -> CK_RV {
        CALLS.fetch_add(1, Ordering::SeqCst);
        CKR_OK
    }
    let fx = FacadeFixture::new();
    let kw = &fx.kw;
    assert_eq!(p11!(kw, C_Finalize(null_mut())), CKR_OK);
    let before = fx.record("initialize").calls;
    let args = CK_C_INITIALIZE_ARGS {
        CreateMutex: Some(create),
        DestroyMutex: Some(other),
        LockMutex: Some(other),
        UnlockMutex: Some(other),
        flags: 0,
        pReserved: null_mut(),
    };
    assert_eq!(kw.init_with(Some(args)), CKR_OK);
    let seen = fx.record("initialize");
    assert_eq!(seen.calls, before + 1);
    assert_eq!(
        (seen.last_ptr as usize, seen.last_len),
        (0, CKF_OS_LOCKING_OK),
        "the backend's C_Initialize got OS locking and no callbacks"
    );
    // Calls from several threads run on Keywarden's own (OS) locking.
    let s = fx.session();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let mut info: CK_SESSION_INFO = unsafe { std::mem::zeroed() };
                assert_eq!(p11!(kw, C_GetSessionInfo(s, &mut info)), CKR_OK);
            });
        }
    });
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        0,
        "an application mutex function was called"
    );
    assert_eq!(p11!(kw, C_Finalize(null_mut())), CKR_OK);
}
