use std::borrow::Cow;

use pkcs11_sys::*;

use super::*;

const POLICY: &str = r#"
version = 1
[settings]
utc_offset = "+01:00"
default_classification = "Medium"

[principals]
alice = { user = "alice" }
bob = { user = "bob" }
signer-app = { user = "svc", exe = "/opt/signer/bin/*" }
ops-group = { group = "ops" }
carol-id = { identity = "carol" }
web = { host = "web-*", uid = [2000, 2001] }

[roles]
signers = { members = ["alice", "signer-app"], clearance = "Medium-High" }
auditors = { members = ["bob"], clearance = "Medium" }
ops = { members = ["ops-group"], clearance = "Low" }
payments = { members = ["carol-id"], clearance = "High" }
admin = { members = [], clearance = "High" }
web = { members = ["web"], clearance = "Low" }

[[keyset]]
name = "pay"
label = "pay-*"
classification = "High"
owner = "payments"

[[keyset]]
name = "team"
label = "team-*"
classification = "Medium"
owner = "signers"

[[keyset]]
name = "test"
label = "test-*"
classification = "Low"

[[rule]]
id = "no-rsa-pkcs"
effect = "deny"
roles = ["*"]
ops = ["sign"]
mechanisms = ["CKM_RSA_PKCS"]

[[rule]]
id = "no-secret-app"
effect = "deny"
roles = ["signers"]
ops = ["sign"]
keys = { label = "app-secret*" }

[[rule]]
id = "signers-sign"
roles = ["signers"]
ops = ["sign"]
keys = { label = ["app-*", "team-*", "pay-*"], class = "private-key" }
mechanisms = ["CKM_ECDSA", "CKM_ECDSA_SHA256", "CKM_RSA_PKCS"]

[[rule]]
id = "signers-sign-late"
roles = ["signers"]
ops = ["sign"]
keys = { label = "app-secret-2" }

[[rule]]
id = "verify-any"
roles = ["*"]
ops = ["verify"]

[[rule]]
id = "office-hours"
roles = ["ops"]
ops = ["sign"]
keys = { set = "test" }
when = { days = ["mon-fri"], hours = "09:00-17:00" }

[[rule]]
id = "web-by-id"
roles = ["web"]
ops = ["encrypt", "decrypt"]
keys = { id = "01ab", type = "AES", class = "secret-key" }
when = { host = "web-1*" }

[[rule]]
id = "payments-all"
roles = ["payments"]
ops = ["sign", "verify", "destroy"]
keys = { set = "pay" }

[[rule]]
id = "admin-so"
roles = ["admin"]
ops = ["init-token", "so-login"]
when = { login = "so" }

[[grant]]
id = "team-to-auditors"
owner = "signers"
keyset = "team"
to = ["auditors"]
ops = ["sign"]

[[grant]]
id = "pay-to-auditors"
owner = "payments"
keyset = "pay"
to = ["auditors"]
ops = ["sign"]
"#;

fn rule(d: &Decision) -> String {
    d.rule.to_string()
}

#[test]
fn a_matching_allow_rule_allows_and_names_itself() {
    let p = compile(POLICY);
    let d = decide(
        &p,
        &user("alice"),
        Op::Sign,
        Some(&key("app-1", CKO_PRIVATE_KEY)),
        Some(CKM_ECDSA),
    );
    assert!(d.allow, "{d:?}");
    assert_eq!(rule(&d), "signers-sign");
    assert_eq!(d.rv, CKR_OK);
    // Allowing allocates nothing.
    assert!(matches!(d.reason, Cow::Borrowed(_)));
}

#[test]
fn default_deny_when_no_rule_matches() {
    let p = compile(POLICY);
    let d = decide(
        &p,
        &user("bob"),
        Op::Sign,
        Some(&key("app-1", CKO_PRIVATE_KEY)),
        Some(CKM_ECDSA),
    );
    assert!(!d.allow);
    assert_eq!(rule(&d), "default-deny");
    assert_eq!(d.rv, CKR_KEY_FUNCTION_NOT_PERMITTED);
    // The class selector: alice may not sign with a public key.
    let d = decide(
        &p,
        &user("alice"),
        Op::Sign,
        Some(&key("app-1", CKO_PUBLIC_KEY)),
        Some(CKM_ECDSA),
    );
    assert_eq!((d.allow, rule(&d)), (false, "default-deny".into()));
    // An unknown class never matches a class selector (fail closed).
    let mut k = key("app-1", CKO_PRIVATE_KEY);
    k.class = None;
    assert!(!decide(&p, &user("alice"), Op::Sign, Some(&k), Some(CKM_ECDSA)).allow);
    // Every operation has its refusal code.
    let d = decide(
        &p,
        &user("bob"),
        Op::Destroy,
        Some(&key("app-1", CKO_PRIVATE_KEY)),
        None,
    );
    assert_eq!(d.rv, CKR_ACTION_PROHIBITED);
    let d = decide(
        &p,
        &user("bob"),
        Op::ReadSensitive,
        Some(&key("app-1", CKO_PRIVATE_KEY)),
        None,
    );
    assert_eq!(d.rv, CKR_ATTRIBUTE_SENSITIVE);
    // Only private and secret keys hold key material: a certificate's or public
    // key's CKA_VALUE is readable without a rule; an object of unknown class is not.
    for class in [CKO_CERTIFICATE, CKO_PUBLIC_KEY, CKO_DATA] {
        let d = decide(
            &p,
            &user("bob"),
            Op::ReadSensitive,
            Some(&key("app-1", class)),
            None,
        );
        assert_eq!((d.allow, rule(&d)), (true, "not-key-material".into()));
    }
    for class in [Some(CKO_SECRET_KEY), None] {
        let mut k = key("app-1", CKO_PRIVATE_KEY);
        k.class = class;
        let d = decide(&p, &user("bob"), Op::ReadSensitive, Some(&k), None);
        assert_eq!((d.allow, rule(&d)), (false, "default-deny".into()));
    }
    let d = decide(&p, &user("bob"), Op::InitToken, None, None);
    assert_eq!(d.rv, CKR_ACTION_PROHIBITED);
}

#[test]
fn first_match_wins_and_explicit_deny_rules_come_first() {
    let p = compile(POLICY);
    let alice = user("alice");
    // The deny rule before signers-sign refuses the mechanism for everyone.
    let d = decide(
        &p,
        &alice,
        Op::Sign,
        Some(&key("app-1", CKO_PRIVATE_KEY)),
        Some(CKM_RSA_PKCS),
    );
    assert_eq!(
        (d.allow, rule(&d), d.rv),
        (false, "no-rsa-pkcs".into(), CKR_MECHANISM_INVALID)
    );
    // A deny rule without mechanisms refuses with the operation's code.
    let d = decide(
        &p,
        &alice,
        Op::Sign,
        Some(&key("app-secret-1", CKO_PRIVATE_KEY)),
        Some(CKM_ECDSA),
    );
    assert_eq!(
        (d.allow, rule(&d), d.rv),
        (
            false,
            "no-secret-app".into(),
            CKR_KEY_FUNCTION_NOT_PERMITTED
        )
    );
    // ... and a later allow rule for the same key never gets a say.
    let d = decide(
        &p,
        &alice,
        Op::Sign,
        Some(&key("app-secret-2", CKO_PRIVATE_KEY)),
        Some(CKM_ECDSA),
    );
    assert_eq!(rule(&d), "no-secret-app");
}

#[test]
fn a_mechanism_outside_the_rule_is_mechanism_invalid() {
    let p = compile(POLICY);
    let d = decide(
        &p,
        &user("alice"),
        Op::Sign,
        Some(&key("app-1", CKO_PRIVATE_KEY)),
        Some(CKM_SHA256_RSA_PKCS),
    );
    assert!(!d.allow);
    assert_eq!(d.rv, CKR_MECHANISM_INVALID);
    assert_eq!(rule(&d), "default-deny");
    assert!(d.reason.contains("signers-sign"), "{}", d.reason);
    assert!(d.reason.contains("CKM_SHA256_RSA_PKCS"), "{}", d.reason);
}

#[test]
fn mac_clearance_refuses_even_when_a_rule_allows() {
    let p = compile(POLICY);
    // signers (Medium-High) may sign pay-* by rule, but pay keys are High.
    let d = decide(
        &p,
        &user("alice"),
        Op::Sign,
        Some(&key("pay-1", CKO_PRIVATE_KEY)),
        Some(CKM_ECDSA),
    );
    assert_eq!((d.allow, rule(&d)), (false, "mac-clearance".into()));
    assert_eq!(d.rv, CKR_KEY_FUNCTION_NOT_PERMITTED);
    assert!(
        d.reason.contains("signers-sign") && d.reason.contains("High"),
        "{}",
        d.reason
    );
    // A level recorded by the store raises a key above its keyset's level.
    let mut k = key("app-1", CKO_PRIVATE_KEY);
    k.classification = Some(Level::High);
    assert_eq!(
        rule(&decide(
            &p,
            &user("alice"),
            Op::Sign,
            Some(&k),
            Some(CKM_ECDSA)
        )),
        "mac-clearance"
    );
    // ... and never lowers it.
    let mut k = key("pay-1", CKO_PUBLIC_KEY);
    k.classification = Some(Level::Low);
    assert_eq!(p.classification(&k), Level::High);
    // `roles = ["*"]`: the clearance is the caller's best role, else default Low.
    let bob = user("bob");
    assert!(
        decide(
            &p,
            &bob,
            Op::Verify,
            Some(&key("app-1", CKO_PUBLIC_KEY)),
            Some(CKM_ECDSA)
        )
        .allow
    );
    assert_eq!(
        rule(&decide(
            &p,
            &bob,
            Op::Verify,
            Some(&key("pay-1", CKO_PUBLIC_KEY)),
            Some(CKM_ECDSA)
        )),
        "mac-clearance"
    );
    let nobody = user("nobody");
    assert_eq!(
        rule(&decide(
            &p,
            &nobody,
            Op::Verify,
            Some(&key("app-1", CKO_PUBLIC_KEY)),
            None
        )),
        "mac-clearance"
    );
    assert!(
        decide(
            &p,
            &nobody,
            Op::Verify,
            Some(&key("test-1", CKO_PUBLIC_KEY)),
            None
        )
        .allow
    );
}

#[test]
fn principals_match_on_user_exe_group_uid_host_and_identity() {
    let p = compile(POLICY);
    let mut svc = user("svc");
    svc.exe = Some("/opt/signer/bin/sign".into());
    let k = key("app-1", CKO_PRIVATE_KEY);
    assert!(decide(&p, &svc, Op::Sign, Some(&k), Some(CKM_ECDSA)).allow);
    // `*` does not cross a directory in exe globs.
    svc.exe = Some("/opt/signer/bin/sub/sign".into());
    assert!(!decide(&p, &svc, Op::Sign, Some(&k), Some(CKM_ECDSA)).allow);
    svc.exe = None;
    assert!(!decide(&p, &svc, Op::Sign, Some(&k), Some(CKM_ECDSA)).allow);

    let mut carol = user("carol");
    assert!(
        !decide(
            &p,
            &carol,
            Op::Sign,
            Some(&key("pay-1", CKO_PRIVATE_KEY)),
            Some(CKM_ECDSA)
        )
        .allow
    );
    carol.identity = Some(NamedIdentity {
        name: "carol".into(),
        roles: vec![],
    });
    let d = decide(
        &p,
        &carol,
        Op::Sign,
        Some(&key("pay-1", CKO_PRIVATE_KEY)),
        Some(CKM_ECDSA),
    );
    assert_eq!((d.allow, rule(&d)), (true, "payments-all".into()));

    // uid list AND host glob; the rule's own host condition narrows further.
    let mut web = user("www");
    web.uid = Some(2001);
    web.host = Some("web-17".into());
    let mut aes = KeyFacts {
        class: Some(CKO_SECRET_KEY),
        key_type: Some(CKK_AES),
        id: Some(vec![0x01, 0xab]),
        classification: Some(Level::Low),
        ..KeyFacts::default()
    };
    assert!(decide(&p, &web, Op::Encrypt, Some(&aes), Some(CKM_AES_GCM)).allow);
    web.host = Some("web-2".into());
    assert!(!decide(&p, &web, Op::Encrypt, Some(&aes), Some(CKM_AES_GCM)).allow);
    web.host = Some("web-17".into());
    aes.id = Some(vec![0x01]);
    assert!(!decide(&p, &web, Op::Encrypt, Some(&aes), Some(CKM_AES_GCM)).allow);

    let mut ops = user("dave");
    ops.groups.push("ops".into());
    assert_eq!(p.resolve(&ops).role_names(&p), vec!["ops"]);
}

#[test]
fn time_windows_follow_the_injected_clock_and_the_utc_offset() {
    let clock = clock_at(MONDAY);
    let p = compile_with(POLICY, clock.clone());
    let mut dave = user("dave");
    dave.groups.push("ops".into());
    let s = p.resolve(&dave);
    let k = key("test-1", CKO_PRIVATE_KEY);
    let at = |unix: i64| {
        clock.set(unix);
        p.decide(&Request {
            subject: &s,
            op: Op::Sign,
            key: Some(&k),
            mechanism: Some(CKM_ECDSA),
        })
    };
    // utc_offset +01:00: 09:00-17:00 local is 08:00-16:00 UTC.
    assert!(at(MONDAY + 8 * 3600).allow);
    assert!(!at(MONDAY + 8 * 3600 - 60).allow);
    assert!(at(MONDAY + 16 * 3600 - 60).allow);
    let d = at(MONDAY + 16 * 3600);
    assert_eq!((d.allow, rule(&d)), (false, "default-deny".into()));
    // Saturday 10:00 local.
    assert!(!at(MONDAY + 5 * 86_400 + 9 * 3600).allow);
    // Friday 10:00 local.
    assert!(at(MONDAY + 4 * 86_400 + 9 * 3600).allow);
}

#[test]
fn windows_wrap_past_midnight_and_day_ranges_wrap_past_sunday() {
    let text = r#"
        version = 1
        [roles]
        night = { members = ["*"], clearance = "High" }
        [[rule]]
        id = "night"
        roles = ["night"]
        ops = ["sign"]
        when = { days = ["fri-mon"], hours = ["22:00-06:00"] }
    "#;
    let clock = clock_at(MONDAY);
    let p = compile_with(text, clock.clone());
    let s = p.resolve(&user("x"));
    let at = |unix: i64| {
        clock.set(unix);
        p.decide(&Request {
            subject: &s,
            op: Op::Sign,
            key: None,
            mechanism: None,
        })
        .allow
    };
    assert!(at(MONDAY + 3600)); // Monday 01:00
    assert!(at(MONDAY + 23 * 3600)); // Monday 23:00
    assert!(!at(MONDAY + 12 * 3600)); // Monday noon
    assert!(!at(MONDAY + 86_400 + 3600)); // Tuesday 01:00
    assert!(at(MONDAY - 3600)); // Sunday 23:00
}

#[test]
fn login_conditions_and_store_roles() {
    let p = compile(POLICY);
    let mut admin = user("root");
    admin.identity = Some(NamedIdentity {
        name: "root-admin".into(),
        roles: vec!["admin".into(), "no-such-role".into()],
    });
    admin.login = Login::So;
    let d = decide(&p, &admin, Op::InitToken, None, None);
    assert_eq!((d.allow, rule(&d)), (true, "admin-so".into()));
    admin.login = Login::User;
    let d = decide(&p, &admin, Op::InitToken, None, None);
    assert_eq!((d.allow, d.rv), (false, CKR_ACTION_PROHIBITED));
    // A request without a key never matches a rule that selects keys.
    let d = decide(&p, &user("alice"), Op::Sign, None, Some(CKM_ECDSA));
    assert!(!d.allow);
}

#[test]
fn dac_grants_lend_within_the_owners_rights_and_the_grantees_clearance() {
    let p = compile(POLICY);
    let bob = user("bob");
    let d = decide(
        &p,
        &bob,
        Op::Sign,
        Some(&key("team-1", CKO_PRIVATE_KEY)),
        Some(CKM_ECDSA),
    );
    assert_eq!((d.allow, rule(&d)), (true, "team-to-auditors".into()));
    assert!(matches!(d.rule, RuleRef::Grant(_)));
    // The owner itself may not use that mechanism, so neither may the grantee.
    let d = decide(
        &p,
        &bob,
        Op::Sign,
        Some(&key("team-1", CKO_PRIVATE_KEY)),
        Some(CKM_SHA512_RSA_PKCS),
    );
    assert!(!d.allow);
    // Nor on a public key (the owner's rule selects private keys).
    assert!(
        !decide(
            &p,
            &bob,
            Op::Sign,
            Some(&key("team-1", CKO_PUBLIC_KEY)),
            Some(CKM_ECDSA)
        )
        .allow
    );
    // Nor an operation that was not lent.
    assert!(
        !decide(
            &p,
            &bob,
            Op::Destroy,
            Some(&key("team-1", CKO_PRIVATE_KEY)),
            None
        )
        .allow
    );
    // High keys lent to a Medium grantee: MAC still refuses.
    let d = decide(
        &p,
        &bob,
        Op::Sign,
        Some(&key("pay-1", CKO_PRIVATE_KEY)),
        Some(CKM_ECDSA),
    );
    assert_eq!((d.allow, rule(&d)), (false, "mac-clearance".into()));
    assert!(d.reason.contains("pay-to-auditors"), "{}", d.reason);
    // Someone else gets nothing from the grant.
    assert!(
        !decide(
            &p,
            &user("eve"),
            Op::Sign,
            Some(&key("team-1", CKO_PRIVATE_KEY)),
            Some(CKM_ECDSA)
        )
        .allow
    );
    assert_eq!(p.owner_of(&key("team-1", CKO_PRIVATE_KEY)), Some("signers"));
    assert_eq!(p.keyset_of(&key("pay-9", CKO_PRIVATE_KEY)), Some("pay"));
}

#[test]
fn grants_are_validated_against_the_owner() {
    let base = POLICY
        .split("[[grant]]")
        .next()
        .unwrap_or_default()
        .to_owned();
    let not_owner = format!("{base}[[grant]]\nid = \"g\"\nowner = \"auditors\"\nkeyset = \"team\"\nto = [\"ops\"]\nops = [\"sign\"]\n");
    assert!(compile_err(&not_owner).contains("does not own keyset"));
    let beyond = format!("{base}[[grant]]\nid = \"g\"\nowner = \"signers\"\nkeyset = \"team\"\nto = [\"ops\"]\nops = [\"decrypt\"]\n");
    let msg = compile_err(&beyond);
    assert!(msg.contains("no rule allows its owner"), "{msg}");
    assert!(msg.starts_with("configuration: test.toml:"), "{msg}");
    let admin = format!("{base}[[grant]]\nid = \"g\"\nowner = \"signers\"\nkeyset = \"team\"\nto = [\"ops\"]\nops = [\"so-login\"]\n");
    assert!(compile_err(&admin).contains("cannot be granted"));
}

#[test]
fn visibility_hides_what_a_caller_may_not_use() {
    let p = compile(POLICY);
    let alice = p.resolve(&user("alice"));
    let bob = p.resolve(&user("bob"));
    let mut carol = user("carol");
    carol.identity = Some(NamedIdentity {
        name: "carol".into(),
        roles: vec![],
    });
    let carol = p.resolve(&carol);
    let pay = key("pay-1", CKO_PRIVATE_KEY);
    assert!(!p.may_see(&alice, &pay));
    assert!(!p.may_see(&bob, &pay));
    assert!(p.may_see(&carol, &pay));
    assert!(p.may_see(&alice, &key("app-1", CKO_PRIVATE_KEY)));
    // A deny rule naming one mechanism does not hide the key (no-rsa-pkcs).
    let ops = {
        let mut d = user("dave");
        d.groups.push("ops".into());
        p.resolve(&d)
    };
    assert!(p.may_see(&ops, &key("test-1", CKO_PRIVATE_KEY)));
}

#[test]
fn always_visible_classes() {
    let text = r#"
        version = 1
        [settings]
        always_visible = ["certificate"]
    "#;
    let p = compile(text);
    let s = p.resolve(&user("x"));
    assert!(p.may_see(&s, &key("c", CKO_CERTIFICATE)));
    assert!(!p.may_see(&s, &key("k", CKO_PRIVATE_KEY)));
    // An empty policy allows nothing.
    assert!(
        !decide(
            &p,
            &user("x"),
            Op::Sign,
            Some(&key("k", CKO_PRIVATE_KEY)),
            Some(CKM_ECDSA)
        )
        .allow
    );
    assert!(!decide(&p, &user("x"), Op::SoLogin, None, None).allow);
}

#[test]
fn a_subject_from_an_older_policy_is_resolved_again() {
    let old = compile(POLICY);
    let subject = old.resolve(&user("alice"));
    let new = compile(&POLICY.replace(
        "alice = { user = \"alice\" }",
        "alice = { user = \"alicia\" }",
    ));
    assert_ne!(old.generation(), new.generation());
    let k = key("app-1", CKO_PRIVATE_KEY);
    let req = Request {
        subject: &subject,
        op: Op::Sign,
        key: Some(&k),
        mechanism: Some(CKM_ECDSA),
    };
    assert!(old.decide(&req).allow);
    assert!(!new.decide(&req).allow);
}

#[test]
fn ops_map_from_functions() {
    use crate::functions::FunctionId as F;
    assert_eq!(Op::for_function(F::C_SignInit), Some(Op::Sign));
    assert_eq!(Op::for_function(F::C_VerifyRecoverInit), Some(Op::Verify));
    assert_eq!(Op::for_function(F::C_GenerateKeyPair), Some(Op::Generate));
    assert_eq!(Op::for_function(F::C_InitPIN), Some(Op::InitPin));
    assert_eq!(Op::for_function(F::C_Login), None);
    assert_eq!(Op::for_function(F::C_Sign), None);
    assert_eq!(Op::from_name("import"), Some(Op::Create));
    for op in Op::ALL {
        assert_eq!(Op::from_name(op.name()), Some(op));
        assert_eq!(Op::ALL[op.index()], op);
    }
    assert!(is_secret_attribute(CKA_VALUE) && !is_secret_attribute(CKA_LABEL));
}
