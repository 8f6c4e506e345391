//! Unit tests of `config`.

use super::*;

const GOOD: &str = r#"
        [backend]
        module = "/usr/lib/softhsm/libsofthsm2.so"
        [policy]
        profile = "transparent"
        [store]
        dir = "/var/lib/keywarden"
        [audit]
        dir = "/var/log/keywarden"
    "#;

#[test]
fn parses_a_complete_file() {
    let c = Config::parse(GOOD).unwrap();
    assert_eq!(
        c.backend.module,
        PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")
    );
    assert_eq!(c.policy.mode, PolicyMode::Transparent);
    assert_eq!(c.store.busy_timeout_ms, DEFAULT_BUSY_TIMEOUT_MS);
}

#[test]
fn store_busy_timeout_is_optional_and_bounded() {
    let with = |v: &str| GOOD.replace("[store]", &format!("[store]\nbusy_timeout_ms = {v}"));
    assert_eq!(
        Config::parse(&with("500")).unwrap().store.busy_timeout_ms,
        500
    );
    assert!(Config::parse(&with("0")).is_err());
    assert!(Config::parse(&with("30001")).is_err());
    assert!(Config::parse(&with("-1")).is_err());
}

#[test]
fn policy_modes() {
    let with = |policy: &str| Config::parse(&GOOD.replace("profile = \"transparent\"", policy));
    assert_eq!(
        with("mode = \"transparent\"").unwrap().policy.mode,
        PolicyMode::Transparent
    );
    let c = with("mode = \"enforce\"\nfile = \"/etc/keywarden/policy.toml\"").unwrap();
    assert_eq!(
        c.policy.mode,
        PolicyMode::Enforce {
            file: PathBuf::from("/etc/keywarden/policy.toml")
        }
    );
    for (bad, why) in [
        ("mode = \"enforce\"", "needs policy.file"),
        ("mode = \"enforce\"\nfile = \"policy.toml\"", "absolute"),
        (
            "mode = \"transparent\"\nfile = \"/p.toml\"",
            "only read with",
        ),
        ("mode = \"strict\"", "unknown policy.mode"),
        ("profile = \"baseline\"", "not a mode"),
        (
            "profile = \"transparent\"\nmode = \"transparent\"",
            "not both",
        ),
        ("", "missing"),
    ] {
        let msg = with(bad).unwrap_err().to_string();
        assert!(msg.contains(why), "{bad}: {msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
    // Written back in the current form.
    let text = toml::to_string(&c).unwrap();
    assert!(text.contains("mode = \"enforce\""), "{text}");
    assert_eq!(Config::parse(&text).unwrap(), c);
}

#[test]
fn refuses_missing_sections_unknown_keys_and_relative_paths() {
    assert!(Config::parse("").is_err());
    assert!(Config::parse(&GOOD.replace("[audit]", "[audit]\nbogus = 1")).is_err());
    assert!(Config::parse(&GOOD.replace("\"/usr/lib", "\"usr/lib")).is_err());
    assert!(Config::parse(&GOOD.replace("transparent", "allow-all")).is_err());
    assert!(Config::parse(&GOOD.replace("transparent", "baseline")).is_err());
    assert!(Config::parse(&GOOD.replace("[policy]", "[policy]\nbogus = 1")).is_err());
}

#[test]
fn audit_settings_default_and_validate() {
    let c = Config::parse(GOOD).unwrap();
    assert_eq!(c.audit.mode, AuditMode::Buffered);
    assert_eq!(
        (
            c.audit.rotate_mb,
            c.audit.seal_every_records,
            c.audit.seal_every_secs
        ),
        (64, 1000, 60)
    );
    assert_eq!(c.audit.syslog, None);
    let full = GOOD.replace(
        "dir = \"/var/log/keywarden\"",
        "dir = \"/var/log/keywarden\"\nmode = \"required\"\nrotate_mb = 8\nsyslog = \"udp://127.0.0.1:514\"\nseal_key_file = \"/etc/k\"\nseal_token = \"audit\"",
    );
    let c = Config::parse(&full).unwrap();
    assert_eq!(c.audit.seal_token.as_deref(), Some("audit"));
    assert_eq!(c.audit.mode, AuditMode::Required);
    assert_eq!(c.audit.rotate_mb, 8);
    let written = GOOD.replace(
        "dir = \"/var/log/keywarden\"",
        "dir = \"/var/log/keywarden\"\nmode = \"written\"",
    );
    let mode = Config::parse(&written).unwrap().audit.mode;
    assert_eq!(mode, AuditMode::Written);
    assert!(mode.caller_waits() && !mode.syncs_each_batch());
    for bad in [
        "mode = \"sometimes\"",
        "rotate_mb = 0",
        "syslog = \"tcp://x:1\"",
        "seal_key_file = \"k\"",
        "seal_token = \"\"",
        "seal_token = \"a-label-that-is-longer-than-32-bytes\"",
    ] {
        let text = GOOD.replace("[audit]", &format!("[audit]\n{bad}"));
        assert!(Config::parse(&text).is_err(), "{bad}");
    }
}

#[test]
fn sharing_groups_are_optional_and_resolved_at_use() {
    let c = Config::parse(GOOD).unwrap();
    assert_eq!(
        (c.store.group.as_deref(), c.audit.group.as_deref()),
        (None, None)
    );
    assert_eq!(c.store.sharing().unwrap().gid, None);
    let with = GOOD
        .replace("[store]", "[store]\ngroup = \"4545\"")
        .replace("[audit]", "[audit]\ngroup = \"root\"");
    let c = Config::parse(&with).unwrap();
    assert_eq!(c.store.sharing().unwrap().gid, Some(4545));
    assert_eq!(c.audit.sharing().unwrap().gid, Some(0));
    let unknown = GOOD.replace("[store]", "[store]\ngroup = \"no-such-group-kw\"");
    let msg = Config::parse(&unknown)
        .unwrap()
        .store
        .sharing()
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("store.group") && msg.contains("does not exist"),
        "{msg}"
    );
    assert!(Config::parse(&GOOD.replace("[store]", "[store]\ngroup = \"\"")).is_err());
}

#[test]
fn errors_are_one_line_and_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k.toml");
    std::fs::write(&p, "[backend\nmodule=").unwrap();
    let msg = Config::load(&p).unwrap_err().to_string();
    assert!(!msg.contains('\n'), "{msg}");
    assert!(msg.contains("k.toml"), "{msg}");
    let msg = Config::load(&dir.path().join("absent.toml"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("cannot read"), "{msg}");
}
