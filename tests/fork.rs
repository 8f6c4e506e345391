//! A real `fork()` through Keywarden.
//!
//! PKCS#11 v2.40 (base specification, "Applications and processes"): a child process
//! must call `C_Initialize` before using the library, and what it inherited from the
//! parent is not usable. Keywarden implements this with a `pthread_atfork` generation
//! counter (src/ffi/boundary.rs). The forking client is C (tests/c/fork_client.c)
//! because a Rust test harness is multi-threaded, and forking a multi-threaded process
//! is exactly what real forking clients avoid.

mod common;
#[path = "c/support.rs"]
mod support;

use std::process::Output;

fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Builds and runs tests/c/fork_client.c through Keywarden on this test's token.
fn run_fork_client(env: &common::TestEnv) -> Output {
    let client = support::harness("fork_client", env.path());
    env.command(&client)
        .arg(common::keywarden_module())
        .arg(common::TOKEN_LABEL)
        .arg(common::USER_PIN)
        .output()
        .expect("run fork_client")
}

#[test]
fn forked_child_must_reinitialise_and_then_works_parent_unaffected() {
    let env = common::TestEnv::new();
    let out = run_fork_client(&env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", show(&out));
    // Every step printed its line: a client that exited early cannot pass.
    for line in [
        "parent: sign before fork: CKR_OK",
        // 0x190 = CKR_CRYPTOKI_NOT_INITIALIZED, for a session call, a library call
        // and C_Finalize alike.
        "child: before C_Initialize: C_GetSessionInfo=0x190 C_GetSlotList=0x190 C_Finalize=0x190",
        "child: C_Initialize=0x0",
        "child: login and sign: CKR_OK",
        "parent: child exit status 0",
        "parent: sign after fork: CKR_OK",
    ] {
        assert!(stdout.contains(line), "missing {line:?}\n{}", show(&out));
    }
}

/// The same client straight against SoftHSM: proves the harness itself is sound, and
/// shows why Keywarden must do the fork check itself: SoftHSM 2.6 has no fork
/// detection, so directly the child's un-initialised calls succeed on the parent's
/// copied state.
#[test]
fn the_fork_client_against_softhsm_directly_shows_no_fork_detection() {
    let env = common::TestEnv::new();
    let client = support::harness("fork_client", env.path());
    let out = env
        .command(&client)
        .arg(common::SOFTHSM_MODULE)
        .arg(common::TOKEN_LABEL)
        .arg(common::USER_PIN)
        .output()
        .expect("run fork_client");
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("child: before C_Initialize: C_GetSessionInfo=0x0 C_GetSlotList=0x0"),
        "{}",
        show(&out)
    );
}

/// OpenSC's own fork test: the parent initialises and forks; the child calls
/// `C_Initialize`, which must not answer `CKR_CRYPTOKI_ALREADY_INITIALIZED`; the
/// parent fails unless the child exits 0.
#[test]
fn pkcs11_tool_test_fork_passes() {
    let env = common::TestEnv::new();
    let help = env
        .command("pkcs11-tool")
        .arg("--help")
        .output()
        .expect("pkcs11-tool installed (softhsm-config/install-deps.sh)");
    let help =
        String::from_utf8_lossy(&help.stdout).into_owned() + &String::from_utf8_lossy(&help.stderr);
    assert!(
        help.contains("--test-fork"),
        "this pkcs11-tool has no --test-fork"
    );
    let out = env
        .command("pkcs11-tool")
        .arg("--module")
        .arg(common::keywarden_module())
        .arg("--test-fork")
        .output()
        .expect("run pkcs11-tool");
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Calling C_Initialize in forked child process"),
        "{}",
        show(&out)
    );
}

/// The audit trail across a fork: the child's `C_Initialize` opens its own writer,
/// its records carry its pid, the parent's records continue after, and the one
/// chain verifies (docs/audit.md, "What the module records": Fork).
#[test]
fn a_forked_child_writes_its_own_records_into_the_one_chain() {
    let env = common::TestEnv::new();
    let out = run_fork_client(&env);
    assert!(out.status.success(), "{}", show(&out));

    let mut records = Vec::new();
    for f in keywarden::audit::list_files(&env.path().join("audit")).unwrap() {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            records.push(serde_json::from_str::<serde_json::Value>(line).unwrap());
        }
    }
    let signs = |pid: u64| {
        records
            .iter()
            .filter(|r| r["pid"] == pid && r["function"] == "C_Sign" && r["rv"] == "CKR_OK")
            .count()
    };
    let starts: Vec<u64> = records
        .iter()
        .filter(|r| r["kind"] == "module" && r["what"] == "start")
        .map(|r| r["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(starts.len(), 2, "parent and child each start: {starts:?}");
    let (parent, child) = (starts[0], starts[1]);
    assert_ne!(parent, child);
    assert_eq!(signs(parent), 3, "before, while and after the child runs");
    assert_eq!(signs(child), 1);
    for pid in [parent, child] {
        let stops = records
            .iter()
            .filter(|r| r["pid"] == pid && r["what"] == "stop")
            .count();
        assert_eq!(stops, 1, "pid {pid} stops once");
    }
    // The child wrote none of the parent's records (no duplicate of its first sign).
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let verify = env
        .command(common::keywarden_bin())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", show(&verify));
}
