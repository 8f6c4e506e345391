//! Real PKCS#11 clients through Keywarden: each recipe in `examples/` runs twice, once
//! loading `libkeywarden.so` and once loading SoftHSM directly, each against a token
//! of its own, and both runs must end the same way: the same exit status, the same
//! steps and checks passed (the `==>`, `ok:` and `known:` lines the recipes print),
//! and for pkcs11-tool the same `--test` report.
//!
//! The Keywarden run also proves that the client really loaded Keywarden: with
//! `KEYWARDEN_LOG=info` the module logs "keywarden … started over …" at
//! `C_Initialize`, and the recipes print every command that loads the module as a
//! `  $ …` line, so each such command's output must carry that line (and the direct
//! run must carry none). A client that silently loaded another module (say the
//! OpenSSL engine falling back to p11-kit's proxy) would fail here.
//!
//! The clients come from `softhsm-config/install-deps.sh`; a missing one fails its test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::TestEnv;

/// The marker Keywarden logs at `C_Initialize` (at `KEYWARDEN_LOG=info`).
const STARTED: &str = "started over";

/// One run of a recipe.
struct Run {
    what: &'static str,
    env: TestEnv,
    workdir: PathBuf,
    output: Output,
    elapsed: Duration,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn describe(&self) -> String {
        format!(
            "--- {} run: {} after {:.1?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.what,
            self.output.status,
            self.elapsed,
            self.stdout(),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }

    /// The outcome lines: steps, passed checks, known limitations, the final verdict.
    fn outcome(&self) -> Vec<String> {
        self.stdout()
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.starts_with("==> ")
                    || l.starts_with("ok: ")
                    || l.starts_with("known: ")
                    || l.starts_with("FAILED")
                    || l.ends_with("all steps passed")
                    || l == &"all checks passed"
            })
            .map(String::from)
            .collect()
    }

    /// Each command shown as `  $ …` (one that loads the module), with its output.
    fn module_commands(&self) -> Vec<(String, Vec<String>)> {
        let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
        let mut open = false;
        for line in self.stdout().lines() {
            if let Some(cmd) = line.strip_prefix("  $ ") {
                blocks.push((cmd.to_string(), Vec::new()));
                open = true;
            } else if line.starts_with("    ") && open {
                if let Some(b) = blocks.last_mut() {
                    b.1.push(line.to_string());
                }
            } else {
                open = false;
            }
        }
        blocks
    }

    fn read(&self, file: &str) -> String {
        let path = self.workdir.join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), self.describe()))
    }
}

/// Starts `examples/<script> MODULE WORKDIR` for a fresh token of its own.
fn start(
    what: &'static str,
    script: &str,
    module: &Path,
    extra_env: &[(&str, &Path)],
) -> (TestEnv, PathBuf, Child) {
    let env = TestEnv::new();
    let workdir = env.path().join("work");
    let mut cmd = env.command(common::repo_root().join("examples").join(script));
    cmd.arg(module)
        .arg(&workdir)
        .env("TOKEN_LABEL", common::TOKEN_LABEL)
        .env("USER_PIN", common::USER_PIN)
        .env("SO_PIN", common::SO_PIN)
        .env("KEYWARDEN_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start examples/{script}: {e}"));
    (env, workdir, child)
}

/// Runs the recipe through Keywarden and directly against SoftHSM, side by side,
/// and checks that both succeed the same way. Returns (through Keywarden, direct).
fn run_both(script: &str, extra_env: &[(&str, &Path)]) -> (Run, Run) {
    let t0 = Instant::now();
    let kw_module = common::keywarden_module();
    let (kw_env, kw_dir, kw_child) = start("Keywarden", script, &kw_module, extra_env);
    let (d_env, d_dir, d_child) = start(
        "direct",
        script,
        Path::new(common::SOFTHSM_MODULE),
        extra_env,
    );
    let kw_out = kw_child
        .wait_with_output()
        .expect("wait for the Keywarden run");
    let kw_elapsed = t0.elapsed();
    let d_out = d_child.wait_with_output().expect("wait for the direct run");
    let d_elapsed = t0.elapsed();
    let kw = Run {
        what: "Keywarden",
        env: kw_env,
        workdir: kw_dir,
        output: kw_out,
        elapsed: kw_elapsed,
    };
    let direct = Run {
        what: "direct",
        env: d_env,
        workdir: d_dir,
        output: d_out,
        elapsed: d_elapsed,
    };
    eprintln!(
        "examples/{script}: through Keywarden {:.1?}, direct {:.1?} (run side by side)",
        kw.elapsed, direct.elapsed
    );

    let hint = "(a client missing? run softhsm-config/install-deps.sh)";
    assert!(
        direct.output.status.success(),
        "examples/{script} failed directly {hint}\n{}",
        direct.describe()
    );
    assert!(
        kw.output.status.success(),
        "examples/{script} failed through Keywarden but passed directly\n{}\n{}",
        kw.describe(),
        direct.describe()
    );

    let (kw_lines, d_lines) = (kw.outcome(), direct.outcome());
    assert!(
        kw_lines.iter().any(|l| l.starts_with("ok: ")),
        "no checks ran\n{}",
        kw.describe()
    );
    assert!(
        kw_lines
            .last()
            .is_some_and(|l| l.ends_with("all steps passed")),
        "{}",
        kw.describe()
    );
    assert_eq!(
        kw_lines,
        d_lines,
        "examples/{script}: different steps or checks through Keywarden than directly\n{}\n{}",
        kw.describe(),
        direct.describe()
    );

    // Every command that loads the module loaded Keywarden, and the direct run never did.
    let commands = kw.module_commands();
    assert!(
        !commands.is_empty(),
        "no module commands shown\n{}",
        kw.describe()
    );
    for (cmd, output) in &commands {
        assert!(
            output
                .iter()
                .any(|l| l.contains("keywarden") && l.contains(STARTED)),
            "`{cmd}` did not load Keywarden (no \"{STARTED}\" log line)\n{}",
            kw.describe()
        );
    }
    assert_eq!(
        commands.len(),
        direct.module_commands().len(),
        "different commands run"
    );
    assert!(
        !direct.stdout().contains(STARTED)
            && !String::from_utf8_lossy(&direct.output.stderr).contains(STARTED),
        "the direct run loaded Keywarden\n{}",
        direct.describe()
    );
    (kw, direct)
}

/// A `--test` report without what legitimately differs between two tokens: slot IDs
/// and Keywarden's own log lines.
fn normalize_self_test(text: &str) -> String {
    text.lines()
        .filter(|l| !l.contains(STARTED))
        .map(|l| {
            let mut out = String::with_capacity(l.len());
            let mut rest = l;
            const SLOT: &str = "token (0x";
            while let Some(i) = rest.find(SLOT) {
                out.push_str(&rest[..i + SLOT.len()]);
                rest = rest[i + SLOT.len()..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
                out.push_str("SLOT");
            }
            out.push_str(rest);
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn pkcs11_tool_self_test_and_admin_flow() {
    let (kw, direct) = run_both("pkcs11-tool.sh", &[]);
    for file in ["pkcs11-tool-test-1.txt", "pkcs11-tool-test-2.txt"] {
        let (k, d) = (
            normalize_self_test(&kw.read(file)),
            normalize_self_test(&direct.read(file)),
        );
        assert!(
            k.contains("Digests:"),
            "{file} is not a --test report:\n{k}"
        );
        assert_eq!(
            k, d,
            "pkcs11-tool --test ({file}) reports differently through Keywarden than directly"
        );
    }
    // With the EC key the self-test passes; with the RSA key it stops at SoftHSM's
    // missing OAEP-label support, directly as through Keywarden (compared above).
    assert!(kw.read("pkcs11-tool-test-1.txt").contains("No errors"));
    assert!(kw
        .read("pkcs11-tool-test-2.txt")
        .contains("CKR_ARGUMENTS_BAD"));
}

#[test]
fn openssl_engine_sign_verify_decrypt_and_certificate() {
    let (kw, _direct) = run_both("openssl.sh", &[]);
    let cert = kw.read("ec.crt");
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
}

#[test]
fn java_keytool_jarsigner_and_jca() {
    // Compile the JCA program once, for both runs.
    let classes = tempfile::tempdir().expect("temp dir");
    let source = common::repo_root().join("examples/java/SignAndEncrypt.java");
    let out = std::process::Command::new("javac")
        .arg("-d")
        .arg(classes.path())
        .arg(&source)
        .output()
        .expect("run javac (is openjdk-17-jdk-headless installed? softhsm-config/install-deps.sh)");
    assert!(
        out.status.success(),
        "javac failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (kw, _direct) = run_both("java.sh", &[("JAVA_CLASSES", classes.path())]);
    // The recipe used the precompiled classes rather than compiling its own.
    assert!(!kw.workdir.join("classes").exists());
    assert!(
        kw.stdout().contains("provider: SunPKCS11-keywarden"),
        "{}",
        kw.describe()
    );
    let cfg = kw.read("p11.cfg");
    assert!(
        cfg.contains(&format!(
            "library = {}",
            common::keywarden_module().display()
        )),
        "{cfg}"
    );
    assert!(kw.env.path().exists());
}

#[test]
fn p11tool_generate_sign_label_and_list() {
    let (kw, _direct) = run_both("p11tool.sh", &[]);
    assert!(kw
        .read("gnutls-ec.crt")
        .starts_with("-----BEGIN CERTIFICATE-----"));
}
