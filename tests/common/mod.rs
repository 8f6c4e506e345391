//! Shared set-up for the integration tests: a private SoftHSM2 token and a Keywarden
//! configuration in front of it, in a temporary directory owned by the test.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once per process, so every test that touches a token
//! runs in its own process (cargo-nextest does this) and gets its own directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The SoftHSM2 module installed by Debian's `softhsm2` package.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Token label, SO PIN and user PIN of every test token.
pub const TOKEN_LABEL: &str = "test";
pub const SO_PIN: &str = "123456";
pub const USER_PIN: &str = "1234";

/// One test's token and configuration. Dropping it removes the directory.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub softhsm_conf: PathBuf,
    pub keywarden_conf: PathBuf,
}

impl TestEnv {
    /// Creates the token and the Keywarden config (transparent profile), and points
    /// this process's `SOFTHSM2_CONF` and `KEYWARDEN_CONF` at them.
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(repo_root().join("softhsm-config/make-token.sh"))
            .arg(dir.path())
            .arg(TOKEN_LABEL)
            .arg(SO_PIN)
            .arg(USER_PIN)
            .env("KEYWARDEN_BIN", keywarden_bin())
            .env("SOFTHSM_MODULE", SOFTHSM_MODULE)
            .output()
            .expect("run make-token.sh");
        assert!(
            out.status.success(),
            "make-token.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = TestEnv {
            softhsm_conf: dir.path().join("softhsm2.conf"),
            keywarden_conf: dir.path().join("keywarden.toml"),
            dir,
        };
        // `init --profile transparent` records security events only; the tests of
        // what the module records expect every call, as `level = "all"` gives.
        let conf = std::fs::read_to_string(&env.keywarden_conf).expect("read config");
        assert!(conf.contains("level = \"security\""), "{conf}");
        let conf = conf.replacen("level = \"security\"", "level = \"all\"", 1);
        std::fs::write(&env.keywarden_conf, conf).expect("write config");
        std::env::set_var("SOFTHSM2_CONF", &env.softhsm_conf);
        std::env::set_var("KEYWARDEN_CONF", &env.keywarden_conf);
        env
    }

    /// Writes `policy` to DIR/policy.toml and switches the configuration to
    /// `mode = "enforce"` with it. Returns the policy file's path.
    pub fn enforce(&self, policy: &str) -> PathBuf {
        let file = self.path().join("policy.toml");
        std::fs::write(&file, policy).expect("write policy");
        let conf = std::fs::read_to_string(&self.keywarden_conf).expect("read config");
        let conf = conf.replace(
            "mode = \"transparent\"",
            &format!("mode = \"enforce\"\nfile = \"{}\"", file.display()),
        );
        assert!(conf.contains("mode = \"enforce\""), "{conf}");
        std::fs::write(&self.keywarden_conf, conf).expect("write config");
        file
    }

    /// Sets `[policy] clock_override` (enforce mode), which lets `KEYWARDEN_NOW`
    /// shift the clock of the module and the `keys` CLI.
    pub fn clock_override(&self, on: bool) {
        let conf = std::fs::read_to_string(&self.keywarden_conf).expect("read config");
        let mut conf = conf.replace("clock_override = true\n", "");
        if on {
            assert!(conf.contains("mode = \"enforce\"\n"), "{conf}");
            conf = conf.replace(
                "mode = \"enforce\"\n",
                "mode = \"enforce\"\nclock_override = true\n",
            );
        }
        std::fs::write(&self.keywarden_conf, conf).expect("write config");
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Shares store/ and audit/ with the Unix group `gid` (as `keywarden init
    /// --group` does): `group = "GID"` in `[store]` and `[audit]`, the directories
    /// 2770 and their files 0660 in that group. Processes run with that group
    /// (`CommandExt::gid`) may then use them; nobody else may.
    pub fn share_with_group(&self, gid: u32) {
        use std::os::unix::fs::PermissionsExt;
        let conf = std::fs::read_to_string(&self.keywarden_conf).expect("read config");
        let conf = conf.replace("\n[audit]\n", &format!("\ngroup = \"{gid}\"\n\n[audit]\n"))
            + &format!("group = \"{gid}\"\n");
        std::fs::write(&self.keywarden_conf, conf).expect("write config");
        for sub in ["store", "audit"] {
            let dir = self.path().join(sub);
            std::os::unix::fs::chown(&dir, None, Some(gid)).expect("chgrp");
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o2770)).expect("chmod");
            for e in std::fs::read_dir(&dir).expect("read dir") {
                let p = e.expect("entry").path();
                std::os::unix::fs::chown(&p, None, Some(gid)).expect("chgrp");
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o660))
                    .expect("chmod");
            }
        }
    }

    /// A command with this test's environment (for real clients run as subprocesses).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("SOFTHSM2_CONF", &self.softhsm_conf)
            .env("KEYWARDEN_CONF", &self.keywarden_conf);
        c
    }

    /// Switches the configuration's trail to `required` mode.
    pub fn require_audit(&self) {
        let conf = std::fs::read_to_string(&self.keywarden_conf).expect("read config");
        let conf = conf.replacen("# mode = \"buffered\"", "mode = \"required\"", 1);
        assert!(conf.contains("mode = \"required\""), "{conf}");
        std::fs::write(&self.keywarden_conf, conf).expect("write config");
    }

    /// Every record of the trail in `DIR/audit`, seals included, in chain order.
    pub fn trail_records(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for f in keywarden::audit::list_files(&self.path().join("audit")).expect("trail files") {
            for line in std::fs::read_to_string(f).expect("trail file").lines() {
                out.push(serde_json::from_str(line).expect("a record"));
            }
        }
        out
    }

    /// Runs `keywarden ARGS` in this environment; panics with its output unless it
    /// succeeds, else returns its standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.command(keywarden_bin()).args(args).output().unwrap();
        success_stdout(out, &format!("keywarden {args:?}"))
    }
}

/// The standard output of a command that must have succeeded; panics with `what`
/// and both outputs otherwise.
pub fn success_stdout(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `keywarden` binary cargo built for this test run.
pub fn keywarden_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keywarden"))
}

/// The `libkeywarden.so` built alongside the test binary (target/<profile>/).
pub fn keywarden_module() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test-binary> → target/<profile>/libkeywarden.so
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let module = profile_dir.join("libkeywarden.so");
    assert!(module.exists(), "{} not built", module.display());
    module
}

/// Loads and initialises a module with `cryptoki` (OS locking).
pub fn load(module: &Path) -> cryptoki::context::Pkcs11 {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    let p11 = Pkcs11::new(module).expect("load module");
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    p11
}

/// The slot holding the test token (SoftHSM assigns slot IDs; never hard-code them).
pub fn test_slot(p11: &cryptoki::context::Pkcs11) -> cryptoki::slot::Slot {
    p11.get_slots_with_token()
        .expect("slots")
        .into_iter()
        .find(|s| {
            p11.get_token_info(*s)
                .map(|t| t.label() == TOKEN_LABEL)
                .unwrap_or(false)
        })
        .expect("test token present")
}

/// A cryptoki PIN from a string.
pub fn pin(p: &str) -> cryptoki::types::AuthPin {
    cryptoki::types::AuthPin::new(p.into())
}

/// DER of the P-256 curve's OID, for `CKA_EC_PARAMS`.
pub const P256: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// A fresh token holding one P-256 token key pair whose private key (labelled
/// `label`) may sign, made through Keywarden (still transparent), which is then
/// finalised: the test goes on to change the configuration.
pub fn token_with_signing_key(label: &str) -> TestEnv {
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::Attribute;
    let (env, p11, slot) = keywarden_token();
    let s = p11.open_rw_session(slot).expect("session");
    s.login(cryptoki::session::UserType::User, Some(&pin(USER_PIN)))
        .expect("login");
    s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[Attribute::Token(true), Attribute::EcParams(P256.to_vec())],
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sign(true),
            Attribute::Label(label.as_bytes().to_vec()),
        ],
    )
    .expect("generate");
    drop(s);
    p11.finalize().expect("C_Finalize");
    env
}

/// A fresh token, Keywarden loaded and initialised over it, and the token's slot.
pub fn keywarden_token() -> (TestEnv, cryptoki::context::Pkcs11, cryptoki::slot::Slot) {
    let env = TestEnv::new();
    let p11 = load(&keywarden_module());
    let slot = test_slot(&p11);
    (env, p11, slot)
}

/// Runs `command` with `input` on its standard input and collects its output. A
/// command that refuses its arguments may exit before reading; the write then finds
/// the pipe closed, which is not a failure.
pub fn run_with_stdin(mut command: Command, input: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let written = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes());
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().expect("wait")
}

/// Re-executes this test binary's `test` (a child-only test that prints
/// `RESULT=...`) through `cmd` (a program such as `env` or `unshare` with its
/// leading arguments, and any uid or gid set on it), with `env_var` set so the
/// child knows it is one; returns what it printed after `RESULT=`.
pub fn child_result(mut cmd: Command, test: &str, env_var: &str) -> String {
    let out = cmd
        .arg(std::env::current_exe().expect("current exe"))
        .args([test, "--exact", "--nocapture"])
        .env(env_var, "1")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child {test}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT="))
        .unwrap_or_else(|| panic!("child {test} printed no result: {stdout}"))
        .to_string()
}

/// The one object of `class` labelled `label` the session can see.
pub fn find_one(
    s: &cryptoki::session::Session,
    class: cryptoki::object::ObjectClass,
    label: &str,
) -> cryptoki::object::ObjectHandle {
    use cryptoki::object::Attribute;
    let found = s
        .find_objects(&[Attribute::Class(class), Attribute::Label(label.into())])
        .expect("C_FindObjects");
    assert_eq!(found.len(), 1, "objects labelled {label:?}");
    found[0]
}
