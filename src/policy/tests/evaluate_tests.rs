//! Deciding requests: rule precedence, mechanisms and MAC clearance.

use std::borrow::Cow;

use pkcs11_sys::*;

use super::*;

/// The policy both evaluation test files decide against.
pub(super) const POLICY: &str = r#"
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

pub(super) fn rule(d: &Decision) -> String {
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
