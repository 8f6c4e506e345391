//! Shared by the ABI, fork and C-example tests: compiling the C harnesses in this
//! directory with the system `cc`, and calling a module through its raw function list.
//!
//! The raw layer is deliberate: `cryptoki` refuses NULL pointers, fills §5.2 buffers
//! for us and hides return codes, which are exactly what these tests look at.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr;

use libloading::Library;
use pkcs11_sys::*;

/// The repository root (where `include/` and `tests/c/` live).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compiles C sources into `out` with warnings as errors, against `include/keywarden.h`,
/// with `extra` arguments (e.g. `-shared -fPIC`, `-D...`, `-L... -l...`) at the end.
pub fn cc(sources: &[PathBuf], out: &Path, extra: &[&str]) -> PathBuf {
    let mut cmd = Command::new(std::env::var_os("CC").unwrap_or_else(|| "cc".into()));
    cmd.args([
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-g",
        "-D_GNU_SOURCE",
    ])
    .arg("-I")
    .arg(root().join("include"))
    .args(sources)
    .arg("-o")
    .arg(out)
    .args(extra)
    .arg("-ldl");
    let output = cmd
        .output()
        .expect("run cc (gcc, softhsm-config/install-deps.sh)");
    assert!(
        output.status.success(),
        "cc failed for {sources:?}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out.to_path_buf()
}

/// Compiles `tests/c/<name>.c` into `<dir>/<name>`.
pub fn harness(name: &str, dir: &Path) -> PathBuf {
    let src = root().join("tests/c").join(format!("{name}.c"));
    cc(&[src], &dir.join(name), &[])
}

/// Builds tests/c/v3_facade.c (a recording PKCS#11 3.0 front for SoftHSM) into `dir`
/// and writes `<dir>/facade.toml`: the Keywarden config `conf` with the facade as its
/// backend. Returns (facade path, config path).
pub fn facade_backend(dir: &Path, conf: &Path, softhsm: &str) -> (PathBuf, PathBuf) {
    let so = dir.join("libv3facade.so");
    cc(
        &[root().join("tests/c/v3_facade.c")],
        &so,
        &["-shared", "-fPIC"],
    );
    let text = std::fs::read_to_string(conf).expect("read config");
    let module_line = format!("module = \"{softhsm}\"");
    assert!(
        text.contains(&module_line),
        "{} names {softhsm}",
        conf.display()
    );
    let facade_line = format!("module = \"{}\"", so.display());
    let out = dir.join("facade.toml");
    std::fs::write(&out, text.replace(&module_line, &facade_line)).expect("write config");
    (so, out)
}

/// A module loaded with `dlopen` and its 2.40 function list.
pub struct Module {
    pub lib: Library,
    pub f: &'static CK_FUNCTION_LIST,
}

/// Calls one entry of a function list; panics if the module left it NULL.
///
/// Every use is a raw FFI call whose arguments are the subject of the test (NULL,
/// short buffers, dangling handles), so the arguments are meant to sit inside the
/// macro's `unsafe` block: the caller vouches for them as for any PKCS#11 call.
macro_rules! p11 {
    ($m:expr, $name:ident ( $( $arg:expr ),* $(,)? )) => {{
        let f = $m.f.$name.expect(concat!(stringify!($name), " missing"));
        #[allow(unused_unsafe)]
        unsafe { f( $( $arg ),* ) }
    }};
}
#[allow(unused_imports)] // not every test file calls raw entries
pub(crate) use p11;

impl Module {
    /// `dlopen`s `path` and fetches its function list (not initialised yet).
    pub fn load(path: &Path) -> Module {
        // SAFETY: loading a PKCS#11 module runs no code that needs our cooperation.
        let lib = unsafe { Library::new(path) }.expect("dlopen module");
        let mut list: CK_FUNCTION_LIST_PTR = ptr::null_mut();
        // SAFETY: the symbol has the C_GetFunctionList signature (§5.4).
        let rv = unsafe {
            let get: libloading::Symbol<unsafe extern "C" fn(CK_FUNCTION_LIST_PTR_PTR) -> CK_RV> =
                lib.get(b"C_GetFunctionList\0").expect("C_GetFunctionList");
            get(&mut list)
        };
        assert_eq!(rv, CKR_OK, "C_GetFunctionList");
        // SAFETY: the module's static list lives as long as the (never unloaded) library.
        let f = unsafe { &*list };
        Module { lib, f }
    }

    /// `C_Initialize` with `CKF_OS_LOCKING_OK`, asserting success.
    pub fn init(&self) {
        assert_eq!(
            self.init_with(Some(os_locking_args())),
            CKR_OK,
            "C_Initialize"
        );
    }

    /// `C_Initialize` with the given arguments (`None` → NULL).
    pub fn init_with(&self, args: Option<CK_C_INITIALIZE_ARGS>) -> CK_RV {
        let mut args = args;
        let p = args
            .as_mut()
            .map_or(ptr::null_mut(), |a| ptr::from_mut(a).cast());
        p11!(self, C_Initialize(p))
    }

    /// The slot whose token has `label` (SoftHSM assigns slot IDs at random).
    pub fn slot(&self, label: &str) -> CK_SLOT_ID {
        let mut n: CK_ULONG = 0;
        assert_eq!(
            p11!(self, C_GetSlotList(CK_TRUE, ptr::null_mut(), &mut n)),
            CKR_OK
        );
        let mut slots = vec![0; n as usize];
        assert_eq!(
            p11!(self, C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut n)),
            CKR_OK
        );
        slots.truncate(n as usize);
        for s in slots {
            // SAFETY: CK_TOKEN_INFO is plain old data; all-zero is a valid value.
            let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
            assert_eq!(p11!(self, C_GetTokenInfo(s, &mut info)), CKR_OK);
            if String::from_utf8_lossy(&info.label).trim_end() == label {
                return s;
            }
        }
        panic!("no token labelled {label}");
    }

    /// A read-write session on `slot`.
    pub fn open(&self, slot: CK_SLOT_ID) -> CK_SESSION_HANDLE {
        let mut s = 0;
        let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
        let rv = p11!(
            self,
            C_OpenSession(slot, flags, ptr::null_mut(), None, &mut s)
        );
        assert_eq!(rv, CKR_OK, "C_OpenSession");
        s
    }

    /// `C_Login` as the normal user; an earlier login of another session is fine.
    pub fn login(&self, s: CK_SESSION_HANDLE, pin: &str) {
        let rv = p11!(
            self,
            C_Login(s, CKU_USER, pin.as_ptr().cast_mut(), pin.len() as CK_ULONG)
        );
        assert!(
            rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN,
            "C_Login: {rv:#x}"
        );
    }

    /// Generates a P-256 key pair (session objects); returns (public, private).
    pub fn ec_key_pair(&self, s: CK_SESSION_HANDLE) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
        let mut t = CK_TRUE;
        let mut p256 = P256_OID.to_vec();
        let mut label = *b"abi-ec";
        let mut public = [
            attr(CKA_EC_PARAMS, &mut p256),
            attr(CKA_VERIFY, std::slice::from_mut(&mut t)),
        ];
        let mut t2 = CK_TRUE;
        let mut t3 = CK_TRUE;
        let mut private = [
            attr(CKA_SIGN, std::slice::from_mut(&mut t2)),
            attr(CKA_SENSITIVE, std::slice::from_mut(&mut t3)),
            attr(CKA_LABEL, &mut label),
        ];
        let mut mech = mechanism(CKM_EC_KEY_PAIR_GEN);
        let (mut pubk, mut privk) = (0, 0);
        let rv = p11!(
            self,
            C_GenerateKeyPair(
                s,
                &mut mech,
                public.as_mut_ptr(),
                public.len() as CK_ULONG,
                private.as_mut_ptr(),
                private.len() as CK_ULONG,
                &mut pubk,
                &mut privk,
            )
        );
        assert_eq!(rv, CKR_OK, "C_GenerateKeyPair");
        (pubk, privk)
    }
}

/// DER of the OID of NIST P-256 (secp256r1), as CKA_EC_PARAMS wants it.
pub const P256_OID: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// An attribute pointing at `value` (which must outlive the template's use).
pub fn attr(type_: CK_ATTRIBUTE_TYPE, value: &mut [u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_,
        pValue: value.as_mut_ptr().cast(),
        ulValueLen: value.len() as CK_ULONG,
    }
}

/// A mechanism without parameters.
pub fn mechanism(m: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: m,
        pParameter: ptr::null_mut(),
        ulParameterLen: 0,
    }
}

/// `CK_C_INITIALIZE_ARGS` with `CKF_OS_LOCKING_OK` and no mutex functions.
pub fn os_locking_args() -> CK_C_INITIALIZE_ARGS {
    keywarden::backend::os_locking_init_args()
}
