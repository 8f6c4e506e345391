//! The C example (examples/c/sign_demo.c) compiles against include/keywarden.h with
//! warnings as errors, and signs and verifies through Keywarden on a test token, both
//! dlopen()ing the module and linked against it.

mod common;
#[path = "c/support.rs"]
mod support;

use std::process::Output;

fn run(env: &common::TestEnv, exe: &std::path::Path, args: &[&std::ffi::OsStr]) -> String {
    let out: Output = env
        .command(exe)
        .arg(common::TOKEN_LABEL)
        .arg(common::USER_PIN)
        .args(args)
        .output()
        .expect("run sign_demo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sign_demo failed: {:?}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Every step reports itself; the last line only after a clean C_Finalize.
    for line in [
        &format!("keywarden {}", env!("CARGO_PKG_VERSION")),
        &format!("token '{}' found", common::TOKEN_LABEL),
        "logged in",
        "signature: 64 bytes",
        "verify: OK",
        "corrupted signature: CKR_SIGNATURE_INVALID",
        "sign_demo: OK",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no {line:?} in:\n{stdout}"
        );
    }
    stdout
}

fn source() -> std::path::PathBuf {
    support::root().join("examples/c/sign_demo.c")
}

#[test]
fn sign_demo_dlopen_generates_then_finds_its_key() {
    let env = common::TestEnv::new();
    let exe = support::cc(&[source()], &env.path().join("sign_demo"), &[]);
    let module = common::keywarden_module();
    let first = run(&env, &exe, &[module.as_os_str()]);
    assert!(
        first.contains("generated P-256 key pair 'sign-demo'"),
        "{first}"
    );
    // Token objects: the second run reuses the key the first one made.
    let second = run(&env, &exe, &[module.as_os_str()]);
    assert!(
        second.contains("found P-256 key pair 'sign-demo'"),
        "{second}"
    );
}

#[test]
fn sign_demo_linked_against_libkeywarden() {
    let env = common::TestEnv::new();
    let module = common::keywarden_module();
    let dir = module
        .parent()
        .expect("target/<profile>")
        .to_str()
        .expect("utf-8 path");
    let rpath = format!("-Wl,-rpath,{dir}");
    let exe = env.path().join("sign_demo_linked");
    let flags = ["-DSIGN_DEMO_LINKED", "-L", dir, "-lkeywarden", &rpath];
    support::cc(&[source()], &exe, &flags);
    let out = run(&env, &exe, &[]);
    assert!(
        out.contains("generated P-256 key pair 'sign-demo'"),
        "{out}"
    );
}

#[test]
fn sign_demo_reports_a_missing_token() {
    let env = common::TestEnv::new();
    let exe = support::cc(&[source()], &env.path().join("sign_demo"), &[]);
    let out = env
        .command(&exe)
        .args(["no-such-token", common::USER_PIN])
        .arg(common::keywarden_module())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no token labelled 'no-such-token'"),
        "{stderr}"
    );
}

/// The C example under valgrind's memcheck: no invalid read or write, no use of
/// uninitialised memory anywhere in Keywarden's path (or the backend's) during a
/// whole initialise → sign → verify → finalise run. Leaks are not judged: SoftHSM
/// and the C library keep process-lifetime allocations by design.
#[test]
fn sign_demo_is_clean_under_valgrind_memcheck() {
    let env = common::TestEnv::new();
    let exe = support::cc(&[source()], &env.path().join("sign_demo"), &[]);
    memcheck(&env, &exe);
}

/// The same with a policy in force: enforce mode starts the policy handle, the
/// store and its change watcher, and the lifecycle checks on every key use.
#[test]
fn sign_demo_is_clean_under_valgrind_memcheck_in_enforce_mode() {
    let env = common::TestEnv::new();
    let exe = support::cc(&[source()], &env.path().join("sign_demo"), &[]);
    // The key pair first, without a policy (its creation is not what is tested).
    let module = common::keywarden_module();
    run(&env, &exe, &[module.as_os_str()]);
    env.enforce(ALLOW_ALL);
    memcheck(&env, &exe);
}

const ALLOW_ALL: &str = r#"
version = 1
[settings]
default_classification = "Low"
unmanaged_keys = "allow"
[[rule]]
id = "everything"
roles = ["*"]
ops = ["*"]
"#;

fn memcheck(env: &common::TestEnv, exe: &std::path::Path) {
    let module = common::keywarden_module();
    let out = env
        .command("valgrind")
        .args([
            "--tool=memcheck",
            "--error-exitcode=99",
            "--leak-check=no",
            "--track-origins=no",
            "--quiet",
        ])
        .arg(exe)
        .arg(common::TOKEN_LABEL)
        .arg(common::USER_PIN)
        .arg(&module)
        .output()
        .expect("valgrind (installed by softhsm-config/install-deps.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "memcheck found errors ({:?}):\n{stderr}\n{stdout}",
        out.status
    );
    assert!(stdout.lines().any(|l| l == "sign_demo: OK"), "{stdout}");
}
