//! Keywarden's forwarding overhead, measured against SoftHSM2 in one process.
//!
//! SoftHSM is loaded directly (path A, "direct") and through `libkeywarden.so`
//! (path B, "keywarden") in the same process, over the same token instance and the
//! same keys. Both paths run the same code with raw calls through their
//! `CK_FUNCTION_LIST`; only the table pointer differs. Timed rounds alternate in ABBA
//! order and the result per case is the median of the per-round ratio
//! `keywarden ops/s ÷ direct ops/s`. See benches/README.md for how to run it and for
//! the measured table.
//!
//! Modes:
//! - `overhead [--extra] [--aa] [FILTER...]`: the timed table (Markdown on stdout).
//!   `--extra` adds three cheap single-call cases; `--aa` replaces Keywarden by a second
//!   direct path (an A/A control that shows the noise floor); FILTER keeps the cases
//!   whose name contains one of the words.
//! - `overhead --callgrind CASE direct|keywarden N`: the harness of
//!   benches/callgrind.sh. Sets everything up, warms up, then performs N operations
//!   inside `kw_bench_measured`, the function callgrind's `--toggle-collect` names.
//!
//! Environment: `KEYWARDEN_BENCH_PROFILE=baseline` (measure with the baseline policy
//! in force instead of the transparent profile), `KEYWARDEN_BENCH_MANAGED_KEYS=N`
//! (with a profile: N managed keys in the metadata store, the benchmarked EC key one
//! of them, so the lifecycle checks are on the measured path), `KEYWARDEN_BENCH_AUDIT=required`
//! (the audit trail in `required` mode; default `buffered`), `KEYWARDEN_BENCH_QUICK=1` (smoke run: 6 short rounds),
//! `KEYWARDEN_BENCH_ROUNDS` (even, default 40), `KEYWARDEN_BENCH_ROUND_MS` (default 60),
//! `KEYWARDEN_MODULE` (default: `libkeywarden.so` next to `deps/` of this binary,
//! i.e. target/release/), `SOFTHSM_MODULE` (default the Debian path).
#![allow(non_snake_case)]

use std::ffi::c_void;
use std::mem::size_of;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use libloading::Library;
use pkcs11_sys::*;

#[path = "support/managed.rs"]
mod managed;

const DEFAULT_SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN_LABEL: &str = "bench";
const SO_PIN: &str = "123456";
const USER_PIN: &str = "1234";
/// DER encoding of the OID prime256v1 (secp256r1).
const P256_OID: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `CKA_ID` of the benchmarked EC key pair: with `KEYWARDEN_BENCH_MANAGED_KEYS` it
/// is a managed key's active version.
const BENCH_EC_ID: &[u8] = b"bench-ec-id";

/// One call through a function list. Every call in this file goes through here, so
/// the client-side cost is the same for both paths.
macro_rules! p11 {
    ($fl:expr, $f:ident ( $( $a:expr ),* $(,)? )) => {
        match $fl.$f {
            // SAFETY: the pointer comes from the module's own function list; every
            // argument points to live local storage of the right type and length.
            Some(f) => unsafe { f($( $a ),*) },
            None => CKR_FUNCTION_NOT_SUPPORTED,
        }
    };
}

#[inline(always)]
fn ok(rv: CK_RV, what: &'static str) {
    if rv != CKR_OK {
        failed(rv, what);
    }
}

#[cold]
#[inline(never)]
fn failed(rv: CK_RV, what: &'static str) -> ! {
    panic!("{what} returned {rv:#x}");
}

fn ulong(n: usize) -> CK_ULONG {
    CK_ULONG::try_from(n).expect("length fits CK_ULONG")
}

// ---------------------------------------------------------------------------------
// Modules, sessions, keys
// ---------------------------------------------------------------------------------

/// A loaded PKCS#11 module (never unloaded).
struct Module {
    fl: &'static CK_FUNCTION_LIST,
}

impl Module {
    fn load(path: &Path) -> Module {
        // SAFETY: loading a PKCS#11 module runs its initialisers; both are trusted here.
        let lib = unsafe { Library::new(path) }
            .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
        let lib: &'static Library = Box::leak(Box::new(lib));
        // SAFETY: C_GetFunctionList has this signature in every PKCS#11 version.
        let get = unsafe {
            lib.get::<unsafe extern "C" fn(CK_FUNCTION_LIST_PTR_PTR) -> CK_RV>(
                b"C_GetFunctionList\0",
            )
        }
        .expect("C_GetFunctionList");
        let mut list: CK_FUNCTION_LIST_PTR = ptr::null_mut();
        // SAFETY: the module writes one pointer into our local.
        ok(unsafe { get(&mut list) }, "C_GetFunctionList");
        assert!(!list.is_null());
        // SAFETY: the list is static in the module, which stays loaded.
        Module {
            fl: unsafe { &*list },
        }
    }

    fn initialize(&self) -> CK_RV {
        let mut args = keywarden::backend::os_locking_init_args();
        p11!(
            self.fl,
            C_Initialize((&mut args as *mut CK_C_INITIALIZE_ARGS).cast::<c_void>())
        )
    }

    fn open_session(&self, slot: CK_SLOT_ID) -> CK_SESSION_HANDLE {
        let mut h = CK_INVALID_HANDLE;
        let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
        ok(
            p11!(
                self.fl,
                C_OpenSession(slot, flags, ptr::null_mut(), None, &mut h)
            ),
            "C_OpenSession",
        );
        h
    }
}

/// One path: a module and its own sessions (one main, one per benchmark thread).
struct PathCtx {
    name: &'static str,
    fl: &'static CK_FUNCTION_LIST,
    main: CK_SESSION_HANDLE,
    threads: [CK_SESSION_HANDLE; 2],
}

impl PathCtx {
    fn new(name: &'static str, module: &Module, slot: CK_SLOT_ID) -> PathCtx {
        PathCtx {
            name,
            fl: module.fl,
            main: module.open_session(slot),
            threads: [module.open_session(slot), module.open_session(slot)],
        }
    }

    fn close(&self) {
        for s in [self.main, self.threads[0], self.threads[1]] {
            ok(p11!(self.fl, C_CloseSession(s)), "C_CloseSession");
        }
    }
}

/// The objects every case uses; session objects of the setup session, shared by both
/// paths (object handles belong to the token instance, not to a session).
#[derive(Clone, Copy, Default)]
struct Keys {
    slot: CK_SLOT_ID,
    ec_private: CK_OBJECT_HANDLE,
    rsa_private: CK_OBJECT_HANDLE,
    aes: CK_OBJECT_HANDLE,
}

fn attr<T: ?Sized>(type_: CK_ATTRIBUTE_TYPE, value: &T) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_,
        pValue: (value as *const T).cast_mut().cast::<c_void>(),
        ulValueLen: ulong(std::mem::size_of_val(value)),
    }
}

fn find_slot(fl: &CK_FUNCTION_LIST, label: &str) -> CK_SLOT_ID {
    let mut count: CK_ULONG = 0;
    ok(
        p11!(fl, C_GetSlotList(CK_TRUE, ptr::null_mut(), &mut count)),
        "C_GetSlotList",
    );
    let mut slots = vec![0 as CK_SLOT_ID; count as usize];
    ok(
        p11!(fl, C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut count)),
        "C_GetSlotList",
    );
    slots.truncate(count as usize);
    let mut want = [b' '; 32];
    want[..label.len()].copy_from_slice(label.as_bytes());
    for slot in slots {
        // SAFETY: CK_TOKEN_INFO is plain old data; all-zero is a valid value.
        let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
        ok(p11!(fl, C_GetTokenInfo(slot, &mut info)), "C_GetTokenInfo");
        if info.label == want {
            return slot;
        }
    }
    panic!("no token labelled {label:?}");
}

/// Logs in and generates the keys (session objects of `session`, which stays open).
fn make_keys(
    fl: &CK_FUNCTION_LIST,
    slot: CK_SLOT_ID,
    session: CK_SESSION_HANDLE,
    rsa: bool,
) -> Keys {
    let rv = p11!(
        fl,
        C_Login(
            session,
            CKU_USER,
            USER_PIN.as_ptr().cast_mut(),
            ulong(USER_PIN.len())
        )
    );
    if rv != CKR_USER_ALREADY_LOGGED_IN {
        ok(rv, "C_Login");
    }
    let (yes, no): (CK_BBOOL, CK_BBOOL) = (CK_TRUE, CK_FALSE);
    let mut keys = Keys {
        slot,
        ..Keys::default()
    };

    let pair = |mechanism: CK_MECHANISM_TYPE,
                public: &mut [CK_ATTRIBUTE],
                private: &mut [CK_ATTRIBUTE]|
     -> CK_OBJECT_HANDLE {
        let mut mech = CK_MECHANISM {
            mechanism,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        let (mut hpub, mut hpriv) = (CK_INVALID_HANDLE, CK_INVALID_HANDLE);
        ok(
            p11!(
                fl,
                C_GenerateKeyPair(
                    session,
                    &mut mech,
                    public.as_mut_ptr(),
                    ulong(public.len()),
                    private.as_mut_ptr(),
                    ulong(private.len()),
                    &mut hpub,
                    &mut hpriv
                )
            ),
            "C_GenerateKeyPair",
        );
        hpriv
    };

    keys.ec_private = pair(
        CKM_EC_KEY_PAIR_GEN,
        &mut [
            attr(CKA_TOKEN, &no),
            attr(CKA_VERIFY, &yes),
            attr(CKA_EC_PARAMS, &P256_OID[..]),
            attr(CKA_LABEL, &b"bench-ec-pub"[..]),
            attr(CKA_ID, BENCH_EC_ID),
        ],
        &mut [
            attr(CKA_TOKEN, &no),
            attr(CKA_PRIVATE, &yes),
            attr(CKA_SENSITIVE, &yes),
            attr(CKA_SIGN, &yes),
            attr(CKA_LABEL, &b"bench-ec"[..]),
            attr(CKA_ID, BENCH_EC_ID),
        ],
    );
    if rsa {
        let bits: CK_ULONG = 2048;
        let exponent = [1u8, 0, 1];
        keys.rsa_private = pair(
            CKM_RSA_PKCS_KEY_PAIR_GEN,
            &mut [
                attr(CKA_TOKEN, &no),
                attr(CKA_VERIFY, &yes),
                attr(CKA_MODULUS_BITS, &bits),
                attr(CKA_PUBLIC_EXPONENT, &exponent[..]),
                attr(CKA_LABEL, &b"bench-rsa-pub"[..]),
            ],
            &mut [
                attr(CKA_TOKEN, &no),
                attr(CKA_PRIVATE, &yes),
                attr(CKA_SENSITIVE, &yes),
                attr(CKA_SIGN, &yes),
                attr(CKA_LABEL, &b"bench-rsa"[..]),
            ],
        );
    }
    let len: CK_ULONG = 32;
    let mut template = [
        attr(CKA_TOKEN, &no),
        attr(CKA_SENSITIVE, &yes),
        attr(CKA_ENCRYPT, &yes),
        attr(CKA_DECRYPT, &yes),
        attr(CKA_VALUE_LEN, &len),
        attr(CKA_LABEL, &b"bench-aes"[..]),
    ];
    let mut mech = CK_MECHANISM {
        mechanism: CKM_AES_KEY_GEN,
        pParameter: ptr::null_mut(),
        ulParameterLen: 0,
    };
    ok(
        p11!(
            fl,
            C_GenerateKey(
                session,
                &mut mech,
                template.as_mut_ptr(),
                ulong(template.len()),
                &mut keys.aes
            )
        ),
        "C_GenerateKey",
    );
    keys
}

/// A private token, both modules loaded and initialised (SoftHSM first), both paths.
struct Setup {
    _dir: tempfile::TempDir,
    direct: Module,
    keywarden: Module,
    keys: Keys,
    paths: Vec<PathCtx>,
    setup_session: CK_SESSION_HANDLE,
    softhsm_version: CK_VERSION,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn keywarden_module() -> PathBuf {
    if let Some(p) = std::env::var_os("KEYWARDEN_MODULE") {
        return PathBuf::from(p);
    }
    // target/release/deps/overhead-<hash> → target/release/libkeywarden.so
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let module = dir.join("libkeywarden.so");
    assert!(
        module.exists(),
        "{} not built: run `cargo build --release --lib` first",
        module.display()
    );
    // `cargo bench` builds the library for its own profile into deps/ but does not
    // refresh target/release/libkeywarden.so; refuse to measure an old build.
    let built = std::fs::metadata(&module).and_then(|m| m.modified());
    let newest = newest_source();
    if let (Ok(built), Some((newest, file))) = (built, newest) {
        assert!(
            built >= newest,
            "{} is older than {}: run `cargo build --release --lib` first \
             (or set KEYWARDEN_MODULE)",
            module.display(),
            file.display()
        );
    }
    module
}

/// The most recently modified file among Cargo.toml, Cargo.lock and src/.
fn newest_source() -> Option<(std::time::SystemTime, PathBuf)> {
    fn walk(path: &Path, newest: &mut Option<(std::time::SystemTime, PathBuf)>) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                walk(&entry.path(), newest);
            }
        } else if let Ok(t) = meta.modified() {
            if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                *newest = Some((t, path.to_owned()));
            }
        }
    }
    let root = repo_root();
    let mut newest = None;
    for p in ["Cargo.toml", "Cargo.lock", "src"] {
        walk(&root.join(p), &mut newest);
    }
    newest
}

impl Setup {
    /// `paths` names the paths to open sessions for, in order: "direct",
    /// "direct-2" (a second direct path, for the A/A control) or "keywarden".
    fn new(rsa: bool, paths: &[&'static str]) -> Setup {
        let softhsm = std::env::var("SOFTHSM_MODULE").unwrap_or_else(|_| DEFAULT_SOFTHSM.into());
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(repo_root().join("softhsm-config/make-token.sh"))
            .arg(dir.path())
            .args([TOKEN_LABEL, SO_PIN, USER_PIN])
            .env("KEYWARDEN_BIN", env!("CARGO_BIN_EXE_keywarden"))
            .env("SOFTHSM_MODULE", &softhsm)
            .output()
            .expect("run make-token.sh");
        assert!(
            out.status.success(),
            "make-token.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::env::set_var("SOFTHSM2_CONF", dir.path().join("softhsm2.conf"));
        std::env::set_var("KEYWARDEN_CONF", dir.path().join("keywarden.toml"));
        // KEYWARDEN_BENCH_PROFILE=baseline: the same measurement with the policy engine
        // in force (`keywarden init --profile baseline`: mode = "enforce" and the
        // baseline policy.toml), so every key use and search is decided.
        if let Ok(profile) = std::env::var("KEYWARDEN_BENCH_PROFILE") {
            let out = Command::new(env!("CARGO_BIN_EXE_keywarden"))
                .args([
                    "init",
                    "--force",
                    "--profile",
                    &profile,
                    "--backend",
                    &softhsm,
                    "--dir",
                ])
                .arg(dir.path())
                .output()
                .expect("run keywarden init");
            assert!(
                out.status.success(),
                "keywarden init --profile {profile} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!("profile: {profile} (keywarden init --profile {profile})");
        }
        // The audit trail is always on (buffered, the default of `keywarden init`);
        // KEYWARDEN_BENCH_AUDIT=required measures required mode instead.
        let audit_mode =
            std::env::var("KEYWARDEN_BENCH_AUDIT").unwrap_or_else(|_| "buffered".into());
        if audit_mode != "buffered" {
            let conf_path = dir.path().join("keywarden.toml");
            let conf = std::fs::read_to_string(&conf_path).expect("read keywarden.toml");
            let edited = conf.replacen(
                "# mode = \"buffered\"",
                &format!("mode = \"{audit_mode}\""),
                1,
            );
            assert_ne!(conf, edited, "no audit mode line in keywarden.toml");
            std::fs::write(&conf_path, edited).expect("write keywarden.toml");
        }
        eprintln!(
            "audit: {audit_mode} (trail in {})",
            dir.path().join("audit").display()
        );

        // SoftHSM directly first, then Keywarden, which finds its backend already
        // initialised (same library instance, same token, same objects).
        let direct = Module::load(Path::new(&softhsm));
        ok(direct.initialize(), "C_Initialize (SoftHSM)");
        if let Some(n) = managed::managed_keys() {
            let serial = token_serial(direct.fl, find_slot(direct.fl, TOKEN_LABEL));
            managed::populate_store(&dir.path().join("keywarden.toml"), &serial, BENCH_EC_ID, n);
        }
        let keywarden = Module::load(&keywarden_module());
        ok(keywarden.initialize(), "C_Initialize (Keywarden)");

        // SAFETY: CK_INFO is plain old data.
        let mut info: CK_INFO = unsafe { std::mem::zeroed() };
        ok(p11!(direct.fl, C_GetInfo(&mut info)), "C_GetInfo");

        let slot = find_slot(direct.fl, TOKEN_LABEL);
        assert_eq!(find_slot(keywarden.fl, TOKEN_LABEL), slot);
        let setup_session = direct.open_session(slot);
        let keys = make_keys(direct.fl, slot, setup_session, rsa);
        let paths = paths
            .iter()
            .map(|&name| {
                let module = if name == "keywarden" {
                    &keywarden
                } else {
                    &direct
                };
                PathCtx::new(name, module, slot)
            })
            .collect();
        Setup {
            _dir: dir,
            direct,
            keywarden,
            keys,
            paths,
            setup_session,
            softhsm_version: info.libraryVersion,
        }
    }

    fn finish(self) {
        for path in &self.paths {
            path.close();
        }
        ok(
            p11!(self.direct.fl, C_CloseSession(self.setup_session)),
            "C_CloseSession",
        );
        ok(
            p11!(self.keywarden.fl, C_Finalize(ptr::null_mut())),
            "C_Finalize (Keywarden)",
        );
        ok(
            p11!(self.direct.fl, C_Finalize(ptr::null_mut())),
            "C_Finalize (SoftHSM)",
        );
        // Keywarden's C_Finalize wrote its usage counters: they prove the
        // benchmarked key was a managed key on the measured path.
        if managed::managed_keys().is_some() {
            managed::report_usage(&self._dir.path().join("keywarden.toml"), BENCH_EC_ID);
        }
    }
}

fn token_serial(fl: &CK_FUNCTION_LIST, slot: CK_SLOT_ID) -> String {
    // SAFETY: CK_TOKEN_INFO is plain old data; all-zero is a valid value.
    let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
    ok(p11!(fl, C_GetTokenInfo(slot, &mut info)), "C_GetTokenInfo");
    String::from_utf8_lossy(&info.serialNumber)
        .trim_matches(|c: char| c == ' ' || c == '\0')
        .to_owned()
}

// ---------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    EcdsaSign,
    RsaSign,
    AesGcm1k,
    Sha256Digest4k,
    FindByLabel,
    OpenCloseSession,
    GetAttributes3,
    EcdsaSign2Threads,
    // Cheap single calls, for the per-call cost (`--extra`, callgrind).
    GetSessionInfo,
    GenerateRandom1,
    GetAttribute1,
}

const MAIN_CASES: [Case; 8] = [
    Case::EcdsaSign,
    Case::RsaSign,
    Case::AesGcm1k,
    Case::Sha256Digest4k,
    Case::FindByLabel,
    Case::OpenCloseSession,
    Case::GetAttributes3,
    Case::EcdsaSign2Threads,
];
const EXTRA_CASES: [Case; 3] = [
    Case::GetSessionInfo,
    Case::GenerateRandom1,
    Case::GetAttribute1,
];

impl Case {
    fn all() -> impl Iterator<Item = Case> {
        MAIN_CASES.into_iter().chain(EXTRA_CASES)
    }

    fn name(self) -> &'static str {
        match self {
            Case::EcdsaSign => "ecdsa-p256-sign",
            Case::RsaSign => "rsa2048-sha256-sign",
            Case::AesGcm1k => "aes256-gcm-1k-encrypt",
            Case::Sha256Digest4k => "sha256-4k-digest",
            Case::FindByLabel => "find-by-label",
            Case::OpenCloseSession => "open-close-session",
            Case::GetAttributes3 => "get-3-attributes",
            Case::EcdsaSign2Threads => "ecdsa-p256-sign-2-threads",
            Case::GetSessionInfo => "get-session-info",
            Case::GenerateRandom1 => "generate-random-1",
            Case::GetAttribute1 => "get-1-attribute",
        }
    }

    fn from_name(name: &str) -> Option<Case> {
        Case::all().find(|c| c.name() == name)
    }

    /// What one operation is, in PKCS#11 calls.
    fn calls(self) -> &'static str {
        match self {
            Case::EcdsaSign | Case::EcdsaSign2Threads | Case::RsaSign => "SignInit+Sign",
            Case::AesGcm1k => "EncryptInit+Encrypt",
            Case::Sha256Digest4k => "DigestInit+Digest",
            Case::FindByLabel => "FindObjectsInit+FindObjects+FindObjectsFinal",
            Case::OpenCloseSession => "OpenSession+CloseSession",
            Case::GetAttributes3 | Case::GetAttribute1 => "GetAttributeValue",
            Case::GetSessionInfo => "GetSessionInfo",
            Case::GenerateRandom1 => "GenerateRandom",
        }
    }

    fn calls_per_op(self) -> usize {
        self.calls().split('+').count()
    }

    fn threads(self) -> usize {
        if self == Case::EcdsaSign2Threads {
            2
        } else {
            1
        }
    }

    /// The target for the median ratio (none for the informational cases).
    fn target(self) -> Option<f64> {
        match self {
            Case::OpenCloseSession => Some(0.80),
            c if MAIN_CASES.contains(&c) => Some(0.97),
            _ => None,
        }
    }
}

/// Performs `n` operations of `case` on `session`. Both paths run exactly this code.
#[inline(always)]
fn run_ops(case: Case, fl: &CK_FUNCTION_LIST, session: CK_SESSION_HANDLE, k: &Keys, n: usize) {
    let s = session;
    let mut plain = CK_MECHANISM {
        mechanism: 0,
        pParameter: ptr::null_mut(),
        ulParameterLen: 0,
    };
    match case {
        Case::EcdsaSign | Case::EcdsaSign2Threads | Case::RsaSign => {
            let (key, data, max): (_, &[u8], _) = if case == Case::RsaSign {
                plain.mechanism = CKM_SHA256_RSA_PKCS;
                (
                    k.rsa_private,
                    b"a short message to sign with RSA-2048 and SHA-256",
                    256,
                )
            } else {
                plain.mechanism = CKM_ECDSA;
                (k.ec_private, &[0x5a; 32], 64)
            };
            let mut sig = [0u8; 256];
            for _ in 0..n {
                ok(p11!(fl, C_SignInit(s, &mut plain, key)), "C_SignInit");
                let mut len: CK_ULONG = max;
                ok(
                    p11!(
                        fl,
                        C_Sign(
                            s,
                            data.as_ptr().cast_mut(),
                            ulong(data.len()),
                            sig.as_mut_ptr(),
                            &mut len
                        )
                    ),
                    "C_Sign",
                );
            }
        }
        Case::AesGcm1k => {
            let mut iv = [0x11u8; 12];
            let mut gcm = CK_GCM_PARAMS {
                pIv: iv.as_mut_ptr(),
                ulIvLen: 12,
                ulIvBits: 96,
                pAAD: ptr::null_mut(),
                ulAADLen: 0,
                ulTagBits: 128,
            };
            let mut mech = CK_MECHANISM {
                mechanism: CKM_AES_GCM,
                pParameter: (&mut gcm as *mut CK_GCM_PARAMS).cast::<c_void>(),
                ulParameterLen: ulong(size_of::<CK_GCM_PARAMS>()),
            };
            let mut data = [0x33u8; 1024];
            let mut out = [0u8; 1024 + 16];
            for _ in 0..n {
                ok(
                    p11!(fl, C_EncryptInit(s, &mut mech, k.aes)),
                    "C_EncryptInit",
                );
                let mut len = ulong(out.len());
                ok(
                    p11!(
                        fl,
                        C_Encrypt(
                            s,
                            data.as_mut_ptr(),
                            ulong(data.len()),
                            out.as_mut_ptr(),
                            &mut len
                        )
                    ),
                    "C_Encrypt",
                );
            }
        }
        Case::Sha256Digest4k => {
            plain.mechanism = CKM_SHA256;
            let mut data = [0x44u8; 4096];
            let mut out = [0u8; 32];
            for _ in 0..n {
                ok(p11!(fl, C_DigestInit(s, &mut plain)), "C_DigestInit");
                let mut len = ulong(out.len());
                ok(
                    p11!(
                        fl,
                        C_Digest(
                            s,
                            data.as_mut_ptr(),
                            ulong(data.len()),
                            out.as_mut_ptr(),
                            &mut len
                        )
                    ),
                    "C_Digest",
                );
            }
        }
        Case::FindByLabel => {
            let label = *b"bench-ec";
            let mut template = [attr(CKA_LABEL, &label[..])];
            let mut found = [CK_INVALID_HANDLE; 4];
            for _ in 0..n {
                ok(
                    p11!(fl, C_FindObjectsInit(s, template.as_mut_ptr(), 1)),
                    "C_FindObjectsInit",
                );
                let mut count: CK_ULONG = 0;
                ok(
                    p11!(fl, C_FindObjects(s, found.as_mut_ptr(), 4, &mut count)),
                    "C_FindObjects",
                );
                if count != 1 {
                    failed(count, "C_FindObjects count");
                }
                ok(p11!(fl, C_FindObjectsFinal(s)), "C_FindObjectsFinal");
            }
        }
        Case::OpenCloseSession => {
            for _ in 0..n {
                let mut h = CK_INVALID_HANDLE;
                ok(
                    p11!(
                        fl,
                        C_OpenSession(k.slot, CKF_SERIAL_SESSION, ptr::null_mut(), None, &mut h)
                    ),
                    "C_OpenSession",
                );
                ok(p11!(fl, C_CloseSession(h)), "C_CloseSession");
            }
        }
        Case::GetAttributes3 | Case::GetAttribute1 => {
            let mut class: CK_OBJECT_CLASS = 0;
            let mut key_type: CK_KEY_TYPE = 0;
            let mut label = [0u8; 32];
            let mut template = [
                attr(CKA_KEY_TYPE, &key_type),
                attr(CKA_CLASS, &class),
                attr(CKA_LABEL, &label[..]),
            ];
            let count = if case == Case::GetAttribute1 { 1 } else { 3 };
            for _ in 0..n {
                template[2].ulValueLen = ulong(label.len());
                ok(
                    p11!(
                        fl,
                        C_GetAttributeValue(s, k.ec_private, template.as_mut_ptr(), count)
                    ),
                    "C_GetAttributeValue",
                );
            }
            // Keep the outputs observable.
            std::hint::black_box((&mut class, &mut key_type, &mut label));
        }
        Case::GetSessionInfo => {
            // SAFETY: CK_SESSION_INFO is plain old data.
            let mut info: CK_SESSION_INFO = unsafe { std::mem::zeroed() };
            for _ in 0..n {
                ok(p11!(fl, C_GetSessionInfo(s, &mut info)), "C_GetSessionInfo");
            }
        }
        Case::GenerateRandom1 => {
            let mut byte = [0u8; 1];
            for _ in 0..n {
                ok(
                    p11!(fl, C_GenerateRandom(s, byte.as_mut_ptr(), 1)),
                    "C_GenerateRandom",
                );
            }
        }
    }
}

/// One timed run: returns the operations done and the wall time they took.
///
/// One thread: exactly `n` operations. Several threads: every thread works until
/// `span` has passed (checked between operations), timed from the moment all threads
/// are past a barrier until the last one stops. A fixed duration rather than a fixed
/// count keeps all threads busy for the whole measurement (with a fixed count, the
/// thread that finishes first leaves the other running alone and uncontended).
fn timed(case: Case, path: &PathCtx, keys: &Keys, n: usize, span: Duration) -> (usize, Duration) {
    if case.threads() == 1 {
        let start = Instant::now();
        run_ops(case, path.fl, path.main, keys, n);
        return (n, start.elapsed());
    }
    let barrier = Barrier::new(case.threads());
    let runs: Vec<(usize, Instant, Instant)> = std::thread::scope(|scope| {
        let handles: Vec<_> = path.threads[..case.threads()]
            .iter()
            .map(|&session| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    let mut done = 0;
                    while start.elapsed() < span {
                        run_ops(case, path.fl, session, keys, 1);
                        done += 1;
                    }
                    (done, start, Instant::now())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect()
    });
    let done = runs.iter().map(|r| r.0).sum();
    let start = runs.iter().map(|r| r.1).min().expect("runs");
    let end = runs.iter().map(|r| r.2).max().expect("runs");
    (done, end - start)
}

// ---------------------------------------------------------------------------------
// The timed table
// ---------------------------------------------------------------------------------

struct Settings {
    rounds: usize,
    round: Duration,
}

impl Settings {
    fn from_env() -> Settings {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let quick = std::env::var("KEYWARDEN_BENCH_QUICK").is_ok_and(|v| v != "0");
        let (rounds, ms) = if quick { (6, 15) } else { (40, 60) };
        let rounds = var("KEYWARDEN_BENCH_ROUNDS").map_or(rounds, |r| r as usize);
        Settings {
            // ABBA needs pairs of rounds.
            rounds: rounds.max(2).next_multiple_of(2),
            round: Duration::from_millis(var("KEYWARDEN_BENCH_ROUND_MS").unwrap_or(ms)),
        }
    }
}

struct Row {
    case: Case,
    rounds: usize,
    ops_per_round: usize,
    direct: f64,
    keywarden: f64,
    ratio: f64,
    ci_lo: f64,
    ci_hi: f64,
    /// Median of (1/rate_keywarden - 1/rate_direct) per call; single-threaded only.
    extra_ns_per_call: Option<f64>,
}

fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// The distribution-free 95 % confidence interval of the median of `values`: the
/// order statistics x(k) and x(n+1-k) for the largest k with P(Bin(n, ½) < k) ≤ 2.5 %.
fn median_ci(values: &[f64]) -> (f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    // Invariant: cdf = P(X <= k - 1) and pmf = P(X = k) for X ~ Bin(n, ½).
    let (mut cdf, mut pmf, mut k) = (0.0f64, 0.5f64.powi(n as i32), 0usize);
    while k < n / 2 && cdf + pmf <= 0.025 {
        cdf += pmf;
        pmf *= (n - k) as f64 / (k + 1) as f64;
        k += 1;
    }
    // 1-based x(k) and x(n+1-k); k = 0 (fewer than 6 values) gives the whole range.
    (v[k.saturating_sub(1)], v[(n - k).min(n - 1)])
}

fn measure(case: Case, setup: &Setup, settings: &Settings) -> Row {
    let (a, b, keys) = (&setup.paths[0], &setup.paths[1], &setup.keys);
    let span = settings.round;

    // Calibrate on the direct path: double n until one run takes ≥ 1/4 of a round.
    let mut n = 1usize;
    if case.threads() == 1 {
        let rate = loop {
            let (done, d) = timed(case, a, keys, n, span);
            if d >= span / 4 || n >= 1 << 24 {
                break done as f64 / d.as_secs_f64();
            }
            n *= 2;
        };
        n = ((rate * span.as_secs_f64()) as usize).max(1);
    }
    // Warm both paths once at full size.
    timed(case, a, keys, n, span);
    timed(case, b, keys, n, span);

    let (mut ra, mut rb, mut ratios, mut extra) = (vec![], vec![], vec![], vec![]);
    let mut ops = 0;
    let mut round = 0;
    loop {
        // ABBA: even rounds A then B, odd rounds B then A.
        let ((oa, da), (ob, db)) = if round % 2 == 0 {
            let x = timed(case, a, keys, n, span);
            (x, timed(case, b, keys, n, span))
        } else {
            let y = timed(case, b, keys, n, span);
            (timed(case, a, keys, n, span), y)
        };
        round += 1;
        ops = ops.max(oa);
        let (rate_a, rate_b) = (oa as f64 / da.as_secs_f64(), ob as f64 / db.as_secs_f64());
        ra.push(rate_a);
        rb.push(rate_b);
        ratios.push(rate_b / rate_a);
        extra.push((1.0 / rate_b - 1.0 / rate_a) * 1e9 / case.calls_per_op() as f64);
        // Stop after the base number of rounds once the median is known to ±1 %, or
        // at three times the base number; always after a whole ABBA pair.
        if round % 2 == 0 && round >= settings.rounds {
            let (lo, hi) = median_ci(&ratios);
            if hi - lo <= 0.02 || round >= 3 * settings.rounds {
                break;
            }
        }
    }
    let (ci_lo, ci_hi) = median_ci(&ratios);
    Row {
        case,
        rounds: round,
        ops_per_round: ops,
        direct: quantile(&ra, 0.5),
        keywarden: quantile(&rb, 0.5),
        ratio: quantile(&ratios, 0.5),
        ci_lo,
        ci_hi,
        extra_ns_per_call: (case.threads() == 1).then(|| quantile(&extra, 0.5)),
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

fn table(args: &[String]) {
    let extra = args.iter().any(|a| a == "--extra");
    let aa = args.iter().any(|a| a == "--aa");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let cases: Vec<Case> = Case::all()
        .filter(|c| extra || MAIN_CASES.contains(c))
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name().contains(f.as_str())))
        .collect();
    let settings = Settings::from_env();
    let b = if aa { "direct-2" } else { "keywarden" };
    let setup = Setup::new(cases.contains(&Case::RsaSign), &["direct", b]);

    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(repo_root())
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    // The commit, "-dirty" when what goes into libkeywarden.so differs from it.
    let mut commit = git(&["rev-parse", "--short", "HEAD"]);
    if !git(&[
        "status",
        "--porcelain",
        "--",
        "src",
        "Cargo.toml",
        "Cargo.lock",
    ])
    .is_empty()
    {
        commit.push_str("-dirty");
    }
    let v = setup.softhsm_version;
    println!(
        "Keywarden {commit} overhead ({b} vs direct), {date}, {}, SoftHSM {}.{}. Per case: ABBA \
         rounds of ~{} ms per path ({} rounds, up to {} while the 95 % CI of the median \
         is wider than 0.02), median of the per-round ratios {b}/direct.\n",
        machine(),
        v.major,
        v.minor,
        settings.round.as_millis(),
        settings.rounds,
        3 * settings.rounds,
    );
    println!(
        "| case | one op | direct ops/s | {b} ops/s | ratio (median) | 95 % CI | rounds | extra ns/call | target | met |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|--:|:-:|");
    let started = Instant::now();
    for case in cases {
        let row = measure(case, &setup, &settings);
        let (target, met) = match case.target() {
            Some(t) => (
                format!("≥ {t:.2}"),
                if row.ratio >= t { "yes" } else { "**no**" },
            ),
            None => ("–".into(), "–"),
        };
        let extra = row
            .extra_ns_per_call
            .map_or_else(|| "–".to_string(), |e| format!("{e:.0}"));
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.3} | {:.3}–{:.3} | {} | {extra} | {target} | {met} |",
            row.case.name(),
            row.case.calls(),
            row.direct,
            row.keywarden,
            row.ratio,
            row.ci_lo,
            row.ci_hi,
            row.rounds,
        );
        eprintln!(
            "  {}: {} ops per round, {:.1} s so far",
            row.case.name(),
            row.ops_per_round,
            started.elapsed().as_secs_f64()
        );
    }
    setup.finish();
}

// ---------------------------------------------------------------------------------
// The callgrind harness
// ---------------------------------------------------------------------------------

struct Measured<'a> {
    case: Case,
    fl: &'a CK_FUNCTION_LIST,
    session: CK_SESSION_HANDLE,
    keys: &'a Keys,
    n: usize,
}

/// The measured loop: callgrind runs with `--collect-atstart=no
/// --toggle-collect=kw_bench_measured`, so only what happens in here is counted.
#[no_mangle]
#[inline(never)]
fn kw_bench_measured(m: &Measured<'_>) {
    run_ops(m.case, m.fl, m.session, m.keys, m.n);
}

fn callgrind(args: &[String]) {
    let usage = "usage: overhead --callgrind CASE direct|keywarden N";
    let case = args
        .first()
        .and_then(|c| Case::from_name(c))
        .unwrap_or_else(|| panic!("{usage}"));
    assert_eq!(case.threads(), 1, "{} is not a callgrind case", case.name());
    let n: usize = args.get(2).and_then(|n| n.parse().ok()).expect(usage);
    let name = match args.get(1).map(String::as_str) {
        Some("direct") => "direct",
        Some("keywarden") => "keywarden",
        _ => panic!("{usage}"),
    };
    // Only the measured path's sessions: both runs then get the same session handles
    // (SoftHSM's handle lookup costs a few instructions more for larger handles).
    let setup = Setup::new(case == Case::RsaSign, &[name]);
    let path = &setup.paths[0];
    // Warm-up outside the measured function: lazy binding, first-use allocations.
    run_ops(
        case,
        path.fl,
        path.main,
        &setup.keys,
        (n / 10).clamp(2, 100),
    );
    let m = Measured {
        case,
        fl: path.fl,
        session: path.main,
        keys: &setup.keys,
        n,
    };
    kw_bench_measured(std::hint::black_box(&m));
    println!(
        "case={} path={} n={n} calls_per_op={}",
        case.name(),
        path.name,
        case.calls_per_op()
    );
    setup.finish();
}

fn main() {
    // cargo bench passes `--bench`; drop it and anything cargo's harness would take.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--callgrind") {
        callgrind(&args[1..]);
    } else if args.iter().any(|a| a == "--list") {
        for case in Case::all() {
            println!("{} ({})", case.name(), case.calls());
        }
    } else {
        table(&args);
    }
}
