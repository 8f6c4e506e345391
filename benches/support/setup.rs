//! Modules, sessions, keys (`overhead.rs`): the two modules (direct and through Keywarden),
//! the token, its keys and the configuration the bench runs with.

use super::*;

/// A loaded PKCS#11 module (never unloaded).
pub(super) struct Module {
    pub(super) fl: &'static CK_FUNCTION_LIST,
}

impl Module {
    pub(super) fn load(path: &Path) -> Module {
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

    pub(super) fn initialize(&self) -> CK_RV {
        let mut args = keywarden::backend::os_locking_init_args();
        p11!(
            self.fl,
            C_Initialize((&mut args as *mut CK_C_INITIALIZE_ARGS).cast::<c_void>())
        )
    }

    pub(super) fn open_session(&self, slot: CK_SLOT_ID) -> CK_SESSION_HANDLE {
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
pub(super) struct PathCtx {
    pub(super) name: &'static str,
    pub(super) fl: &'static CK_FUNCTION_LIST,
    pub(super) main: CK_SESSION_HANDLE,
    pub(super) threads: [CK_SESSION_HANDLE; 8],
}

impl PathCtx {
    pub(super) fn new(name: &'static str, module: &Module, slot: CK_SLOT_ID) -> PathCtx {
        PathCtx {
            name,
            fl: module.fl,
            main: module.open_session(slot),
            threads: std::array::from_fn(|_| module.open_session(slot)),
        }
    }

    pub(super) fn close(&self) {
        for &s in std::iter::once(&self.main).chain(&self.threads) {
            ok(p11!(self.fl, C_CloseSession(s)), "C_CloseSession");
        }
    }
}

/// The objects every case uses; session objects of the setup session, shared by both
/// paths (object handles belong to the token instance, not to a session).
#[derive(Clone, Copy, Default)]
pub(super) struct Keys {
    pub(super) slot: CK_SLOT_ID,
    pub(super) ec_private: CK_OBJECT_HANDLE,
    pub(super) rsa_private: CK_OBJECT_HANDLE,
    pub(super) aes: CK_OBJECT_HANDLE,
}

pub(super) fn attr<T: ?Sized>(type_: CK_ATTRIBUTE_TYPE, value: &T) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_,
        pValue: (value as *const T).cast_mut().cast::<c_void>(),
        ulValueLen: ulong(std::mem::size_of_val(value)),
    }
}

pub(super) fn find_slot(fl: &CK_FUNCTION_LIST, label: &str) -> CK_SLOT_ID {
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
pub(super) fn make_keys(
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
pub(super) struct Setup {
    pub(super) _dir: tempfile::TempDir,
    pub(super) direct: Module,
    pub(super) keywarden: Module,
    pub(super) keys: Keys,
    pub(super) paths: Vec<PathCtx>,
    pub(super) setup_session: CK_SESSION_HANDLE,
    pub(super) softhsm_version: CK_VERSION,
}

pub(super) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(super) fn keywarden_module() -> PathBuf {
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
pub(super) fn newest_source() -> Option<(std::time::SystemTime, PathBuf)> {
    pub(super) fn walk(path: &Path, newest: &mut Option<(std::time::SystemTime, PathBuf)>) {
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
    pub(super) fn new(rsa: bool, paths: &[&'static str]) -> Setup {
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
        let audit_mode = audit_mode();
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

    pub(super) fn finish(self) {
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

pub(super) fn token_serial(fl: &CK_FUNCTION_LIST, slot: CK_SLOT_ID) -> String {
    // SAFETY: CK_TOKEN_INFO is plain old data; all-zero is a valid value.
    let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
    ok(p11!(fl, C_GetTokenInfo(slot, &mut info)), "C_GetTokenInfo");
    String::from_utf8_lossy(&info.serialNumber)
        .trim_matches(|c: char| c == ' ' || c == '\0')
        .to_owned()
}

/// `KEYWARDEN_BENCH_AUDIT`: the trail's mode in the measured configuration
/// (default `buffered`, `keywarden init`'s).
pub(super) fn audit_mode() -> String {
    std::env::var("KEYWARDEN_BENCH_AUDIT").unwrap_or_else(|_| "buffered".into())
}
