use super::*;

const MINIMAL: &str = "version = 1\n";

#[test]
fn the_baseline_policy_compiles_and_lints_clean() {
    let p = compile(BASELINE_POLICY);
    assert_eq!(p.lint(), vec![], "baseline has findings");
    let (rules, grants, roles) = p.counts();
    assert!(rules >= 4 && grants == 0 && roles == 2);
}

#[test]
fn an_empty_policy_compiles_and_denies() {
    let p = compile(MINIMAL);
    assert_eq!(p.counts(), (0, 0, 0));
}

fn err_at(text: &str, line: usize, needle: &str) {
    let msg = compile_err(text);
    assert!(
        msg.contains(&format!("test.toml:{line}:")),
        "want line {line}: {msg}"
    );
    assert!(msg.contains(needle), "want {needle:?}: {msg}");
    assert!(!msg.contains('\n'), "{msg}");
}

#[test]
fn errors_name_file_and_line() {
    let rule = |body: &str| {
        format!("version = 1\n[roles]\nr = {{ members = [\"*\"], clearance = \"Low\" }}\n\n[[rule]]\n{body}\n")
    };
    err_at(
        &rule("id = \"a\"\nroles = [\"r\"]\nops = [\"sgn\"]"),
        5,
        "unknown operation \"sgn\"",
    );
    err_at(
        &rule("id = \"a\"\nroles = [\"nope\"]\nops = [\"sign\"]"),
        5,
        "unknown role \"nope\"",
    );
    err_at(
        &rule("id = \"a\"\nroles = [\"r\"]\nops = [\"sign\"]\nmechanisms = [\"CKM_NOPE\"]"),
        5,
        "unknown name \"CKM_NOPE\"",
    );
    err_at(
        &rule("id = \"a\"\nroles = [\"r\"]\nops = [\"sign\"]\nkeys = { label = \"[a\" }"),
        5,
        "bad glob",
    );
    err_at(
        &rule("id = \"a\"\nroles = []\nops = [\"sign\"]"),
        5,
        "`roles` is empty",
    );
    err_at(
        &rule("id = \"default-deny\"\nroles = [\"r\"]\nops = [\"sign\"]"),
        5,
        "reserved",
    );
    err_at(
        &rule("id = \"a b\"\nroles = [\"r\"]\nops = [\"sign\"]"),
        5,
        "bad id",
    );
    err_at(
        &rule("id = \"a\"\nroles = [\"r\"]\nops = [\"sign\"]\nwhen = { hours = \"9-17\" }"),
        5,
        "bad hours",
    );
    err_at(
        &rule("id = \"a\"\nroles = [\"r\"]\nops = [\"sign\"]\nwhen = { days = [\"someday\"] }"),
        5,
        "bad day",
    );
    err_at(
        &rule("id = \"a\"\nroles = [\"r\"]\nops = [\"sign\"]\nwhen = { login = \"root\" }"),
        5,
        "unknown login state",
    );
    err_at(
        &rule("id = \"a\"\nroles = [\"r\"]\nops = [\"sign\"]\nkeys = { id = \"xyz\" }"),
        5,
        "bad CKA_ID",
    );
    err_at(
        &rule("id = \"a\"\nroles = [\"r\"]\nops = [\"sign\"]\nkeys = { set = \"nope\" }"),
        5,
        "unknown keyset",
    );
    err_at(
        &rule(
            "id = \"a\"\nroles = [\"r\"]\nops = [\"sign\"]\nkeys = { classification = \"Secret\" }",
        ),
        5,
        "unknown classification",
    );
    err_at(
        &rule("id = \"a\"\nroles = [\"r\"]\nops = [\"sign\"]\nkeys = { class = \"blob\" }"),
        5,
        "unknown name \"blob\"",
    );
    err_at(
        &rule("id = \"a\"\nroles = [\"r\"]\nops = [\"sign\"]\neffect = \"maybe\""),
        5,
        "effect",
    );
    let dup = rule("id = \"a\"\nroles = [\"r\"]\nops = [\"sign\"]\n\n[[rule]]\nid = \"a\"\nroles = [\"r\"]\nops = [\"verify\"]");
    err_at(&dup, 10, "duplicate id");
    // serde-level errors: unknown keys, wrong types, TOML syntax.
    err_at(
        &rule("id = \"a\"\nroles = [\"r\"]\nops = [\"sign\"]\nbogus = 1"),
        9,
        "bogus",
    );
    err_at("version = 1\n\n[settings]\nutc_offset = 5\n", 4, "");
    err_at("version = 1\n[[rule]\n", 2, "");
    err_at("version = 2\n", 1, "unsupported policy version");
    let msg = compile_err("");
    assert!(msg.contains("version"), "{msg}");
}

#[test]
fn errors_in_other_sections() {
    err_at(
        "version = 1\n[settings]\nutc_offset = \"+25:00\"\n",
        2,
        "bad utc_offset",
    );
    err_at("version = 1\n[principals]\nx = {}\n", 3, "matches nothing");
    err_at(
        "version = 1\n[roles]\nr = { members = [\"ghost\"], clearance = \"Low\" }\n",
        3,
        "unknown principal",
    );
    err_at(
        "version = 1\n[roles]\nr = { clearance = \"Top\" }\n",
        3,
        "unknown classification",
    );
    err_at(
        "version = 1\n[[keyset]]\nname = \"a\"\nowner = \"nobody\"\n",
        2,
        "unknown role",
    );
    err_at(
        "version = 1\n[[keyset]]\nname = \"a\"\n[[keyset]]\nname = \"a\"\n",
        4,
        "duplicate keyset",
    );
    err_at("version = 1\n[creation]\nlabel = \"(\"\n", 2, "bad regex");
    err_at(
        "version = 1\n[creation]\nkey_types = [\"RSA\", \"NOPE\"]\n",
        2,
        "unknown key type",
    );
    err_at(
        "version = 1\n[creation]\nec_curves = [\"P-999\"]\n",
        2,
        "unknown curve",
    );
    err_at(
        "version = 1\n[creation]\nset = { CKA_LABEL = true }\n",
        2,
        "not a boolean attribute",
    );
    err_at(
        "version = 1\n[principals]\np = { user = [] }\n",
        3,
        "empty list",
    );
}

#[test]
fn friendly_spellings_compile() {
    let text = r#"
        version = 1
        [settings]
        utc_offset = "-05:30"
        default_classification = "medium-high"
        default_clearance = "low-medium"
        always_visible = ["certificate", "CKO_PUBLIC_KEY"]
        [principals]
        p = { uid = 0, gid = [0, 1], exe = "/usr/**/openssl", login = ["user", "so"] }
        [roles]
        r = { members = ["p"], clearance = "high" }
        [[keyset]]
        name = "k"
        id = ["01:02", "0xff"]
        class = ["private-key", "secret-key"]
        type = ["ec", "CKK_RSA", "generic-secret"]
        [[rule]]
        id = "x.y_z:1"
        roles = ["r"]
        ops = ["*"]
        keys = { set = "k", classification = ["Low", "High"] }
        mechanisms = ["ecdsa", "CKM_SHA256_RSA_PKCS_PSS"]
        except_mechanisms = ["CKM_RSA_PKCS"]
        when = { days = ["*"], hours = ["00:00-24:00"], host = "*" }
        [creation]
        key_types = ["rsa", "ec"]
        ec_curves = ["P-256", "prime256v1", "Ed25519"]
        set = { CKA_PRIVATE = true, CKA_MODIFIABLE = false }
    "#;
    let p = compile(text);
    let mut who = user("root");
    who.uid = Some(0);
    who.gids = vec![0];
    who.exe = Some("/usr/local/bin/openssl".into());
    assert_eq!(p.resolve(&who).role_names(&p), vec!["r"]);
}

#[test]
fn unmanaged_keys_setting_parses_and_defaults_to_allow() {
    use crate::policy::UnmanagedKeys;
    assert_eq!(compile(MINIMAL).unmanaged_keys(), UnmanagedKeys::Allow);
    for (text, want) in [
        ("allow", UnmanagedKeys::Allow),
        ("processing", UnmanagedKeys::Processing),
        ("deny", UnmanagedKeys::Deny),
    ] {
        let p = compile(&format!(
            "version = 1\n[settings]\nunmanaged_keys = \"{text}\"\n"
        ));
        assert_eq!(p.unmanaged_keys(), want);
        assert_eq!(want.as_str(), text);
    }
    let msg = compile_err("version = 1\n[settings]\nunmanaged_keys = \"sometimes\"\n");
    assert!(msg.contains("unknown unmanaged_keys"), "{msg}");
}
