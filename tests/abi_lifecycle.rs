//! `C_Initialize` / `C_Finalize` through the real `libkeywarden.so` (PKCS#11 v2.40
//! §5.4): the locking-argument cases, strict (not) initialised answers, failed starts
//! reported on stderr, and a backend the application initialised itself.
//!
//! Every test runs in its own process (cargo-nextest), so each starts uninitialised.

mod common;
#[path = "c/support.rs"]
mod support;

use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use pkcs11_sys::*;
use support::{os_locking_args, p11, Module};

/// Calls of the application's mutex callbacks: Keywarden must never make any.
static MUTEX_CALLS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn create_mutex(_: CK_VOID_PTR_PTR) -> CK_RV {
    MUTEX_CALLS.fetch_add(1, Ordering::SeqCst);
    CKR_OK
}
unsafe extern "C" fn mutex_op(_: CK_VOID_PTR) -> CK_RV {
    MUTEX_CALLS.fetch_add(1, Ordering::SeqCst);
    CKR_OK
}

/// Init args with the mutex callbacks selected by `which` (create, destroy, lock, unlock).
fn args(which: [bool; 4], flags: CK_FLAGS) -> CK_C_INITIALIZE_ARGS {
    type Op = unsafe extern "C" fn(CK_VOID_PTR) -> CK_RV;
    let op = |on: bool| on.then_some(mutex_op as Op);
    CK_C_INITIALIZE_ARGS {
        CreateMutex: which[0]
            .then_some(create_mutex as unsafe extern "C" fn(CK_VOID_PTR_PTR) -> CK_RV),
        DestroyMutex: op(which[1]),
        LockMutex: op(which[2]),
        UnlockMutex: op(which[3]),
        flags,
        pReserved: ptr::null_mut(),
    }
}

fn keywarden() -> Module {
    Module::load(&common::keywarden_module())
}

/// True when the module answers a library call as initialised.
fn is_initialised(m: &Module) -> bool {
    let mut n: CK_ULONG = 0;
    let rv = p11!(m, C_GetSlotList(CK_FALSE, ptr::null_mut(), &mut n));
    assert!(
        rv == CKR_OK || rv == CKR_CRYPTOKI_NOT_INITIALIZED,
        "unexpected {rv:#x}"
    );
    rv == CKR_OK
}

fn finalize(m: &Module) -> CK_RV {
    p11!(m, C_Finalize(ptr::null_mut()))
}

#[test]
fn the_four_locking_cases_and_the_malformed_ones() {
    let _env = common::TestEnv::new();
    let kw = keywarden();
    const ALL: [bool; 4] = [true; 4];
    const NONE: [bool; 4] = [false; 4];
    // §5.4, CK_C_INITIALIZE_ARGS: the four legal combinations of flag and callbacks.
    let accepted: [(&str, Option<CK_C_INITIALIZE_ARGS>); 4] = [
        ("NULL pInitArgs", None),
        ("no callbacks, no flag", Some(args(NONE, 0))),
        (
            "no callbacks, CKF_OS_LOCKING_OK",
            Some(args(NONE, CKF_OS_LOCKING_OK)),
        ),
        (
            "all callbacks, CKF_OS_LOCKING_OK",
            Some(args(ALL, CKF_OS_LOCKING_OK)),
        ),
    ];
    for (what, a) in accepted {
        assert_eq!(kw.init_with(a), CKR_OK, "{what}");
        assert!(is_initialised(&kw), "{what}");
        assert_eq!(finalize(&kw), CKR_OK, "{what}");
        assert!(!is_initialised(&kw), "{what}");
    }
    // Case 3: the application's callbacks only. Accepted, as SoftHSM accepts it
    // (below); Keywarden locks with OS primitives all the same.
    assert_eq!(kw.init_with(Some(args(ALL, 0))), CKR_OK);
    assert!(is_initialised(&kw));
    assert_eq!(finalize(&kw), CKR_OK);

    // Some but not all callbacks: malformed whatever the flag says.
    for mask in 1u8..15 {
        let which = [0, 1, 2, 3].map(|i| mask & (1 << i) != 0);
        for flags in [0, CKF_OS_LOCKING_OK] {
            let rv = kw.init_with(Some(args(which, flags)));
            assert_eq!(
                rv, CKR_ARGUMENTS_BAD,
                "callbacks {which:?} flags {flags:#x}"
            );
            assert!(!is_initialised(&kw));
        }
    }
    // pReserved must be NULL_PTR.
    let mut reserved = os_locking_args();
    let mut anything = 0u8;
    reserved.pReserved = ptr::from_mut(&mut anything).cast();
    assert_eq!(kw.init_with(Some(reserved)), CKR_ARGUMENTS_BAD);
    assert!(!is_initialised(&kw));

    // Keywarden uses OS locking even when handed callbacks it may use.
    assert_eq!(MUTEX_CALLS.load(Ordering::SeqCst), 0);

    // SoftHSM directly answers case 3 the same way (google/pkcs11test
    // Init.InitArgsMyLocks passes on it).
    let hsm = Module::load(Path::new(common::SOFTHSM_MODULE));
    assert_eq!(
        hsm.init_with(Some(args(ALL, 0))),
        CKR_OK,
        "SoftHSM directly"
    );
    assert_eq!(finalize(&hsm), CKR_OK);
}

#[test]
fn initialisation_state_is_answered_strictly() {
    let _env = common::TestEnv::new();
    let kw = keywarden();
    let mut info: CK_INFO = unsafe { std::mem::zeroed() };
    let mut session_info: CK_SESSION_INFO = unsafe { std::mem::zeroed() };

    // Before C_Initialize: everything but C_GetFunctionList/C_Initialize is refused.
    assert_eq!(p11!(kw, C_GetInfo(&mut info)), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_eq!(
        p11!(kw, C_GetSessionInfo(1, &mut session_info)),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(finalize(&kw), CKR_CRYPTOKI_NOT_INITIALIZED);

    for round in 0..3 {
        kw.init();
        assert_eq!(
            kw.init_with(None),
            CKR_CRYPTOKI_ALREADY_INITIALIZED,
            "round {round}"
        );
        assert_eq!(
            kw.init_with(Some(os_locking_args())),
            CKR_CRYPTOKI_ALREADY_INITIALIZED
        );
        assert_eq!(p11!(kw, C_GetInfo(&mut info)), CKR_OK);
        // A working session, to show that re-initialisation gives a usable module.
        let slot = kw.slot(common::TOKEN_LABEL);
        let s = kw.open(slot);
        kw.login(s, common::USER_PIN);
        assert_eq!(p11!(kw, C_GetSessionInfo(s, &mut session_info)), CKR_OK);
        assert_eq!(session_info.state, CKS_RW_USER_FUNCTIONS);

        // C_Finalize(pReserved != NULL) is refused and changes nothing.
        let mut x = 0u8;
        assert_eq!(
            p11!(kw, C_Finalize(ptr::from_mut(&mut x).cast())),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(p11!(kw, C_GetSessionInfo(s, &mut session_info)), CKR_OK);

        assert_eq!(finalize(&kw), CKR_OK);
        assert_eq!(p11!(kw, C_GetInfo(&mut info)), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert_eq!(
            p11!(kw, C_GetSessionInfo(s, &mut session_info)),
            CKR_CRYPTOKI_NOT_INITIALIZED
        );
        assert_eq!(finalize(&kw), CKR_CRYPTOKI_NOT_INITIALIZED);
    }
}

/// Runs tests/c/init_probe against `module` with `KEYWARDEN_CONF=conf`; returns
/// (stdout, stderr).
fn probe(env: &common::TestEnv, conf: &Path) -> (String, String) {
    static EXE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let exe = EXE.get_or_init(|| support::harness("init_probe", env.path()));
    let out = env
        .command(exe)
        .arg(common::keywarden_module())
        .env("KEYWARDEN_CONF", conf)
        .env_remove("KEYWARDEN_LOG")
        .output()
        .expect("run init_probe");
    assert!(out.status.success(), "init_probe: {out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts a refused start: CKR_GENERAL_ERROR (0x5) and exactly one stderr line, the
/// documented "keywarden: C_Initialize refused: <reason>" containing `reason`.
fn assert_refused(env: &common::TestEnv, conf: &Path, reason: &str) {
    let (stdout, stderr) = probe(env, conf);
    assert_eq!(stdout.trim(), "C_Initialize=0x5", "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got {stderr:?}");
    assert!(
        lines[0].starts_with("keywarden: C_Initialize refused: ") && lines[0].contains(reason),
        "{:?} lacks {reason:?}",
        lines[0]
    );
}

/// The test's own config with `backend.module` replaced.
fn config_with_backend(env: &common::TestEnv, name: &str, backend: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&env.keywarden_conf).expect("read config");
    let replaced = text.replace(
        &format!("module = \"{}\"", common::SOFTHSM_MODULE),
        &format!("module = \"{}\"", backend.display()),
    );
    assert_ne!(text, replaced, "config names {}", common::SOFTHSM_MODULE);
    let path = env.path().join(name);
    std::fs::write(&path, replaced).expect("write config");
    path
}

#[test]
fn a_refused_start_is_general_error_with_one_line_on_stderr() {
    let env = common::TestEnv::new();
    // Control: the test's valid config starts cleanly and silently.
    let (stdout, stderr) = probe(&env, &env.keywarden_conf);
    assert_eq!((stdout.trim(), stderr.as_str()), ("C_Initialize=0x0", ""));

    let missing = env.path().join("absent.toml");
    assert_refused(&env, &missing, "cannot read");
    assert_refused(&env, &missing, "absent.toml");

    let invalid = env.path().join("invalid.toml");
    std::fs::write(&invalid, "[backend\nmodule = ").unwrap();
    assert_refused(&env, &invalid, "invalid.toml");

    // Keywarden as its own backend, under its own name, under another name, and as a
    // byte-for-byte copy: recognised by the exported marker, not by file name.
    let module = common::keywarden_module();
    let itself = config_with_backend(&env, "self.toml", &module);
    assert_refused(&env, &itself, "is Keywarden itself");

    let link = env.path().join("libvendor-hsm.so");
    std::os::unix::fs::symlink(&module, &link).unwrap();
    let linked = config_with_backend(&env, "link.toml", &link);
    assert_refused(&env, &linked, "is Keywarden itself");

    let copy = env.path().join("libcopied-p11.so");
    std::fs::copy(&module, &copy).unwrap();
    let copied = config_with_backend(&env, "copy.toml", &copy);
    assert_refused(&env, &copied, "is Keywarden itself");
}

/// A refused start leaves nothing behind: once the configuration is fixed, the same
/// process initialises normally (in-process; its stderr line goes to the test log).
#[test]
fn a_refused_start_can_be_retried_in_the_same_process() {
    let env = common::TestEnv::new();
    let kw = keywarden();
    std::env::set_var("KEYWARDEN_CONF", env.path().join("not-yet.toml"));
    assert_eq!(kw.init_with(None), CKR_GENERAL_ERROR);
    assert!(!is_initialised(&kw));
    assert_eq!(finalize(&kw), CKR_CRYPTOKI_NOT_INITIALIZED);
    std::env::set_var("KEYWARDEN_CONF", &env.keywarden_conf);
    kw.init();
    assert!(is_initialised(&kw));
    assert_eq!(finalize(&kw), CKR_OK);
}

#[test]
fn a_backend_the_application_initialised_is_left_initialised() {
    let _env = common::TestEnv::new();
    let softhsm = Module::load(Path::new(common::SOFTHSM_MODULE));
    softhsm.init();
    let kw = keywarden();
    for _ in 0..2 {
        // The backend answers CKR_CRYPTOKI_ALREADY_INITIALIZED to Keywarden: fine.
        kw.init();
        let s = kw.open(kw.slot(common::TOKEN_LABEL));
        kw.login(s, common::USER_PIN);
        assert_eq!(finalize(&kw), CKR_OK);
        // Keywarden did not initialise SoftHSM, so it must not have finalised it.
        assert!(
            is_initialised(&softhsm),
            "Keywarden finalised the app's SoftHSM"
        );
        assert!(!is_initialised(&kw));
    }
    assert_eq!(finalize(&softhsm), CKR_OK);
}

/// The converse, so the test above can tell the difference: a backend Keywarden
/// initialised is finalised by Keywarden's C_Finalize.
#[test]
fn a_backend_keywarden_initialised_is_finalised_by_keywarden() {
    let _env = common::TestEnv::new();
    let kw = keywarden();
    kw.init();
    let softhsm = Module::load(Path::new(common::SOFTHSM_MODULE));
    assert_eq!(softhsm.init_with(None), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    assert_eq!(finalize(&kw), CKR_OK);
    assert!(!is_initialised(&softhsm));
}
