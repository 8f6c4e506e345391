//! `keywarden doctor` and `doctor --json` as an administrator runs them: the hint
//! for each configuration failure, where each finding is printed, the hints for
//! an uninitialised token and for named identities without a token PIN file, and
//! the JSON object's fields and exit status.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::TestEnv;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `keywarden doctor ARGS` in `env`.
fn doctor(env: &TestEnv, args: &[&str]) -> Output {
    let mut c = env.command(common::keywarden_bin());
    c.arg("doctor").args(args);
    c.output().unwrap()
}

/// `keywarden doctor --json ARGS`: its exit code and the one object it printed.
fn doctor_json(env: &TestEnv, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let o = doctor(env, &[&["--json"], args].concat());
    let stdout = String::from_utf8(o.stdout.clone()).unwrap();
    assert_eq!(stdout.trim().lines().count(), 1, "one line: {}", text(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(v.is_object(), "{v}");
    (o.status.code(), v)
}

/// The `check`s of the findings at `v[level]`.
fn checks(v: &serde_json::Value, level: &str) -> Vec<String> {
    v[level]
        .as_array()
        .unwrap_or_else(|| panic!("{level} is an array: {v}"))
        .iter()
        .map(|f| f["check"].as_str().unwrap().to_owned())
        .collect()
}

fn finding<'a>(v: &'a serde_json::Value, level: &str, check: &str) -> &'a serde_json::Value {
    v[level]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} in {level}: {v}"))
}

fn edit_config(env: &TestEnv, edit: impl Fn(&str) -> String) {
    let conf = std::fs::read_to_string(&env.keywarden_conf).unwrap();
    std::fs::write(&env.keywarden_conf, edit(&conf)).unwrap();
}

/// The 1-based number of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn doctor_gives_the_init_hint_only_for_a_missing_configuration() {
    let env = TestEnv::new();
    let missing = env.path().join("nowhere.toml");
    let o = doctor(&env, &["--config", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("fix: run `keywarden init"),
        "{}",
        text(&o)
    );
    let (code, v) = doctor_json(&env, &["--config", missing.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert_eq!(checks(&v, "problems"), ["config_missing"], "{v}");
    assert_eq!(v["healthy"], false);

    // A typo in a key on a named line: fix that line, not re-initialise.
    let good = std::fs::read_to_string(&env.keywarden_conf).unwrap();
    edit_config(&env, |c| c.replacen("module = ", "modul = ", 1));
    let typo = line_of(&good, "module = ");
    let o = doctor(&env, &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(!out.contains("keywarden init"), "{out}");
    assert!(
        out.contains(&format!("fix: correct line {typo} of ")),
        "{out}"
    );
    let (code, v) = doctor_json(&env, &[]);
    assert_eq!(code, Some(1));
    let f = finding(&v, "problems", "config_parse");
    assert_eq!(f["line"], typo, "{v}");
    assert!(f["message"].as_str().unwrap().contains("modul"), "{v}");

    // A value that parses but does not validate: the line of its key.
    std::fs::write(&env.keywarden_conf, &good).unwrap();
    let store_dir = format!("dir = \"{}/store\"", env.path().display());
    assert!(good.contains(&store_dir), "{good}");
    edit_config(&env, |c| c.replace(&store_dir, "dir = \"relative/store\""));
    let (code, v) = doctor_json(&env, &[]);
    assert_eq!(code, Some(1));
    let f = finding(&v, "problems", "config_parse");
    assert_eq!(f["line"], line_of(&good, &store_dir), "{v}");
    assert!(
        !f["fix"].as_str().unwrap().contains("keywarden init"),
        "{v}"
    );
}

#[test]
fn doctor_says_how_keywarden_is_deployed_and_what_that_protects() {
    let env = TestEnv::new();
    let o = doctor(&env, &[]);
    let out = text(&o);
    assert!(
        out.contains("deployment: in-process:") && out.contains("not a boundary"),
        "{out}"
    );
    let (code, v) = doctor_json(&env, &[]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["config"]["deployment"], "in-process", "{v}");
}

#[test]
fn doctor_lists_the_store_database_under_store_not_audit() {
    let env = TestEnv::new();
    let o = doctor(&env, &[]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let store = line_of(&out, "store:");
    let db = line_of(&out, "keywarden.db: schema");
    let audit = line_of(&out, "audit:");
    assert!(store < db && db < audit, "{out}");
}

/// A SoftHSM whose token directory holds no token: only the spare uninitialised slot.
fn softhsm_without_tokens(env: &TestEnv) {
    let tokens = env.path().join("empty-tokens");
    std::fs::create_dir(&tokens).unwrap();
    let template = common::repo_root().join("softhsm-config/softhsm2.conf.in");
    let conf = std::fs::read_to_string(template).unwrap();
    std::fs::write(
        &env.softhsm_conf,
        conf.replace("@TOKENDIR@", tokens.to_str().unwrap()),
    )
    .unwrap();
}

#[test]
fn doctor_says_how_to_initialise_a_token_when_there_is_none() {
    let env = TestEnv::new();
    let o = doctor(&env, &[]);
    assert!(!text(&o).contains("softhsm2-util"), "{}", text(&o));
    softhsm_without_tokens(&env);
    let o = doctor(&env, &[]);
    let out = text(&o);
    assert!(out.contains("token not initialised"), "{out}");
    assert!(
        out.contains("fix: softhsm2-util --init-token --slot 0 --label LABEL"),
        "{out}"
    );
    let (_, v) = doctor_json(&env, &[]);
    let f = finding(&v, "warnings", "no_initialised_token");
    assert!(f["fix"].as_str().unwrap().contains("--init-token"), "{v}");
    assert_eq!(v["backend"]["slots"][0]["token"], "not_initialised", "{v}");
}

#[test]
fn doctor_warns_when_named_identities_have_no_token_pin_file() {
    let env = TestEnv::new();
    let (code, v) = doctor_json(&env, &[]);
    assert_eq!(code, Some(0), "{v}");
    assert!(checks(&v, "warnings").is_empty(), "{v}");
    let mut add = env.command(common::keywarden_bin());
    add.args(["users", "add", "alice"]);
    let o = common::run_with_stdin(add, "alice-secret-1\n");
    assert!(o.status.success(), "{}", text(&o));

    let o = doctor(&env, &[]);
    let out = text(&o);
    assert!(o.status.success(), "a warning keeps the exit status: {out}");
    assert!(
        out.contains("WARNING: the store holds 1 named identities but backend.pin_file is not set"),
        "{out}"
    );
    assert!(out.contains("CKR_GENERAL_ERROR"), "{out}");
    let (_, v) = doctor_json(&env, &[]);
    let f = finding(&v, "warnings", "pin_file_unset");
    assert!(f["fix"].as_str().unwrap().contains("pin_file = "), "{v}");

    let pin = env.path().join("token.pin");
    std::fs::write(&pin, format!("{}\n", common::USER_PIN)).unwrap();
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
    edit_config(&env, |c| {
        c.replacen(
            "[backend]\n",
            &format!("[backend]\npin_file = \"{}\"\n", pin.display()),
            1,
        )
    });
    let (code, v) = doctor_json(&env, &[]);
    assert_eq!(code, Some(0), "{v}");
    assert!(
        !checks(&v, "warnings").contains(&"pin_file_unset".to_owned()),
        "{v}"
    );
}

#[test]
fn doctor_json_is_one_object_with_the_exit_status_of_the_text_report() {
    let env = TestEnv::new();
    let (code, v) = doctor_json(&env, &[]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["healthy"], true, "{v}");
    for level in ["problems", "warnings", "notes"] {
        assert!(v[level].is_array(), "{v}");
    }
    assert_eq!(v["policy"]["mode"], "transparent", "{v}");
    assert_eq!(
        v["store"]["schema_version"],
        keywarden::store::SCHEMA_VERSION,
        "{v}"
    );
    assert_eq!(v["store"]["integrity"], "ok", "{v}");
    assert_eq!(v["backend"]["slots"][0]["token"], "initialised", "{v}");
    assert_eq!(
        v["backend"]["slots"][0]["label"],
        common::TOKEN_LABEL,
        "{v}"
    );

    let db = env.path().join("store").join(keywarden::store::DB_FILE);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text_code = doctor(&env, &[]).status.code();
    let (code, v) = doctor_json(&env, &[]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(code, text_code);
    assert_eq!(v["healthy"], false, "{v}");
    let f = finding(&v, "problems", "store_files");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains(db.to_str().unwrap()),
        "{v}"
    );
    assert_eq!(f["fix"], format!("chmod o-rwx {}", db.display()), "{v}");
}
