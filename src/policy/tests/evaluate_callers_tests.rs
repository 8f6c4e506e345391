//! Deciding requests by who asks and when: principal matchers, time windows,
//! login conditions and store roles, DAC grants, visibility, and subjects of an
//! older policy generation.

use pkcs11_sys::*;

use super::evaluate_tests::{rule, POLICY};
use super::*;

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
