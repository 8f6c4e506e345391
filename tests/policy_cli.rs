//! `keywarden policy check` / `explain` and `keywarden init --profile baseline`,
//! run as the built binary.

use std::path::Path;
use std::process::{Command, Output};

const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn keywarden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keywarden"))
        .args(args)
        .env_remove("KEYWARDEN_CONF")
        .output()
        .expect("run keywarden")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    p.display().to_string()
}

const POLICY: &str = r#"version = 1
[settings]
utc_offset = "+01:00"
[principals]
alice = { user = "alice" }
batch = { user = "batch", exe = "/opt/batch/bin/*" }
[roles]
signers = { members = ["alice"], clearance = "Medium" }
night = { members = ["batch"], clearance = "Medium" }
[[keyset]]
name = "app"
label = "app-*"
classification = "Medium"
[[keyset]]
name = "root"
label = "root-*"
classification = "High"

[[rule]]
id = "sign-app"
description = "signers sign with app keys"
roles = ["signers"]
ops = ["sign"]
keys = { set = ["app", "root"], class = "private-key" }
mechanisms = ["CKM_ECDSA"]

[[rule]]
id = "nightly"
roles = ["night"]
ops = ["sign"]
keys = { set = "app" }
when = { hours = "22:00-06:00" }
"#;

#[test]
fn check_accepts_the_baseline_strictly() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "baseline.toml",
        keywarden::policy::BASELINE_POLICY,
    );
    let out = keywarden(&["policy", "check", "--strict", &file]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("valid (4 rules, 0 grants, 2 roles)"),
        "{stdout}"
    );
    assert!(!stdout.contains("warning"), "{stdout}");
}

#[test]
fn check_fails_on_errors_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "p.toml",
        &POLICY.replace(
            "ops = [\"sign\"]\nkeys = { set = \"app\" }",
            "ops = [\"sing\"]\nkeys = { set = \"app\" }",
        ),
    );
    let out = keywarden(&["policy", "check", &file]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("p.toml:27:1") && stderr.contains("unknown operation \"sing\""),
        "{stdout}{stderr}"
    );
}

#[test]
fn check_reports_warnings_and_strict_fails_on_them() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{POLICY}\n[[rule]]\nid = \"again\"\nroles = [\"signers\"]\nops = [\"sign\"]\nkeys = {{ set = \"app\", class = \"private-key\" }}\nmechanisms = [\"CKM_ECDSA\"]\n\n[[rule]]\nid = \"everything\"\nroles = [\"signers\"]\nops = [\"*\"]\n"
    );
    let file = write(dir.path(), "p.toml", &body);
    let out = keywarden(&["policy", "check", &file]);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("warning [shadowed]: rule \"again\" never decides: rule \"sign-app\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning [wide-high]: rule \"everything\""),
        "{stdout}"
    );
    assert!(stdout.contains("2 warning(s)"), "{stdout}");
    let out = keywarden(&["policy", "check", "--strict", &file]);
    assert!(!out.status.success());
    let out = keywarden(&["policy", "check", "--json", &file]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(2), "{v}");
    assert!(v["warnings"][0]["line"].as_u64().is_some(), "{v}");
}

#[test]
fn explain_names_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.toml", POLICY);
    let out = keywarden(&[
        "policy",
        "explain",
        "--policy",
        &file,
        "--user",
        "alice",
        "--key",
        "app-1",
        "--op",
        "sign",
        "--mech",
        "CKM_ECDSA",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("decision: ALLOW"), "{stdout}");
    assert!(
        stdout.contains("rule:     sign-app (")
            && stdout.contains(":19: signers sign with app keys)"),
        "{stdout}"
    );
    assert!(stdout.contains("code:     CKR_OK"), "{stdout}");
    assert!(stdout.contains("roles: signers"), "{stdout}");
    assert!(
        stdout.contains("keyset app") && stdout.contains("classification Medium"),
        "{stdout}"
    );

    // Another mechanism: CKR_MECHANISM_INVALID.
    let out = keywarden(&[
        "policy",
        "explain",
        "--policy",
        &file,
        "--user",
        "alice",
        "--key",
        "app-1",
        "--op",
        "sign",
        "--mech",
        "CKM_RSA_PKCS",
    ]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("decision: DENY") && stdout.contains("CKR_MECHANISM_INVALID"),
        "{stdout}"
    );

    // Above clearance.
    let out = keywarden(&[
        "policy",
        "explain",
        "--policy",
        &file,
        "--user",
        "alice",
        "--key",
        "root-ca",
        "--op",
        "sign",
        "--mech",
        "CKM_ECDSA",
    ]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("rule:     mac-clearance")
            && stdout.contains("CKR_KEY_FUNCTION_NOT_PERMITTED"),
        "{stdout}"
    );
    assert!(stdout.contains("visible:  no"), "{stdout}");

    // Someone else: default deny.
    let out = keywarden(&[
        "policy",
        "explain",
        "--policy",
        &file,
        "--user",
        "mallory",
        "--key",
        "app-1",
        "--op",
        "sign",
        "--mech",
        "CKM_ECDSA",
    ]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("rule:     default-deny") && stdout.contains("roles: none"),
        "{stdout}"
    );
}

#[test]
fn explain_at_a_given_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.toml", POLICY);
    let at = |when: &str| {
        let out = keywarden(&[
            "policy",
            "explain",
            "--policy",
            &file,
            "--user",
            "batch",
            "--exe",
            "/opt/batch/bin/run",
            "--key",
            "app-1",
            "--op",
            "sign",
            "--mech",
            "CKM_ECDSA",
            "--at",
            when,
        ]);
        let (stdout, stderr) = text(&out);
        assert!(stderr.is_empty(), "{stderr}");
        (out.status.success(), stdout)
    };
    // 22:00-06:00 at +01:00.
    let (ok, stdout) = at("2024-01-01T23:30:00Z");
    assert!(ok, "{stdout}");
    assert!(stdout.contains("rule:     nightly"), "{stdout}");
    assert!(stdout.contains("Tue 00:30"), "{stdout}");
    let (ok, stdout) = at("2024-01-01T12:00:00Z");
    assert!(!ok && stdout.contains("default-deny"), "{stdout}");
    let out = keywarden(&[
        "policy",
        "explain",
        "--policy",
        &file,
        "--op",
        "sign",
        "--at",
        "yesterday",
    ]);
    let (_, stderr) = text(&out);
    assert!(
        !out.status.success() && stderr.contains("RFC 3339"),
        "{stderr}"
    );
}

#[test]
fn init_baseline_writes_an_enforcing_config_and_its_policy() {
    if !Path::new(SOFTHSM_MODULE).exists() {
        eprintln!("skipped: {SOFTHSM_MODULE} is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let out = keywarden(&[
        "init",
        "--dir",
        &d,
        "--backend",
        SOFTHSM_MODULE,
        "--profile",
        "baseline",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let conf = std::fs::read_to_string(dir.path().join("keywarden.toml")).unwrap();
    assert!(conf.contains("mode = \"enforce\""), "{conf}");
    let policy = std::fs::read_to_string(dir.path().join("policy.toml")).unwrap();
    assert_eq!(policy, keywarden::policy::BASELINE_POLICY);
    // explain reads the policy named by the configuration.
    let out = Command::new(env!("CARGO_BIN_EXE_keywarden"))
        .args(["policy", "explain", "--user", "u", "--op", "init-token"])
        .env("KEYWARDEN_CONF", dir.path().join("keywarden.toml"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("CKR_ACTION_PROHIBITED"), "{stdout}{stderr}");
    // check does too, and says so in JSON.
    let out = Command::new(env!("CARGO_BIN_EXE_keywarden"))
        .args(["policy", "check", "--json"])
        .env("KEYWARDEN_CONF", dir.path().join("keywarden.toml"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(
        v["file"],
        dir.path().join("policy.toml").display().to_string()
    );
    assert!(
        v["rules"].as_u64().unwrap() > 0 && v["warnings"].is_array(),
        "{v}"
    );
    // Not again without --force; transparent still writes `mode = "transparent"`.
    let again = keywarden(&[
        "init",
        "--dir",
        &d,
        "--backend",
        SOFTHSM_MODULE,
        "--profile",
        "baseline",
    ]);
    assert!(!again.status.success());
    let out = keywarden(&[
        "init",
        "--dir",
        &d,
        "--backend",
        SOFTHSM_MODULE,
        "--profile",
        "transparent",
        "--force",
    ]);
    assert!(out.status.success());
    let conf = std::fs::read_to_string(dir.path().join("keywarden.toml")).unwrap();
    assert!(conf.contains("mode = \"transparent\""), "{conf}");
}

#[test]
fn explain_gives_one_verdict_and_tells_refusal_from_bad_input_by_exit_code() {
    let baseline = concat!(env!("CARGO_MANIFEST_DIR"), "/src/policy/baseline.toml");
    let base = ["policy", "explain", "--policy", baseline];
    let run = |extra: &[&str]| keywarden(&[&base[..], extra].concat());

    // The rules allow generating keys, the size rule refuses RSA-1024: one DENY,
    // naming the size rule, exit 1.
    let out = run(&["--op", "generate", "--key-type", "RSA", "--bits", "1024"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(stdout.matches("decision:").count(), 1, "{stdout}");
    assert!(stdout.contains("decision: DENY"), "{stdout}");
    assert!(stdout.contains("rule:     creation.key-size"), "{stdout}");
    assert!(!stdout.contains("ALLOW"), "{stdout}");

    // The same as JSON.
    let out = run(&[
        "--op",
        "generate",
        "--key-type",
        "RSA",
        "--bits",
        "1024",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["rule"], "creation.key-size");
    assert_eq!(v["code"], "CKR_TEMPLATE_INCONSISTENT");

    // RSA-2048: allowed, exit 0.
    let out = run(&[
        "--op",
        "generate",
        "--key-type",
        "RSA",
        "--bits",
        "2048",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "allow");

    // A misspelt operation is bad input (exit 2), with a suggestion; so is an
    // unknown mechanism, without the "configuration:" prefix.
    let out = run(&["--op", "sgin"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("'sign'"), "{stderr}");
    let out = run(&["--op", "sign", "--mech", "CKM_NOPE"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown mechanism") && !stderr.contains("configuration:"),
        "{stderr}"
    );
    // --help lists the operations.
    let (help, _) = text(&keywarden(&["policy", "explain", "--help"]));
    assert!(
        help.contains("read-sensitive-attribute") && help.contains("so-login"),
        "{help}"
    );
}
