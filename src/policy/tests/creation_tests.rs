//! Creation policy: protection attributes, labels and classification, copies,
//! attribute edits, the rule generation needs, and the baseline.

use pkcs11_sys::*;

use super::*;
use crate::abi::{Attr, EcCurve, Template};

/// The creation policy both creation test files decide against.
pub(super) const POLICY: &str = r#"
version = 1
[settings]
default_classification = "Medium"

[roles]
users = { members = ["*"], clearance = "Medium-High" }
exporters = { members = ["exp"], clearance = "Medium" }

[principals]
exp = { user = "exporter" }

[[keyset]]
name = "high"
label = "high-*"
classification = "High"

[[keyset]]
name = "app"
label = "app-*"
classification = "Medium"

[[keyset]]
name = "test"
label = "test-*"
classification = "Low"

[[rule]]
id = "export"
roles = ["exporters"]
ops = ["export"]

[[rule]]
id = "make"
roles = ["users"]
ops = ["generate", "create", "copy", "set-attribute"]

[creation]
label = "^[a-z]+-[a-z0-9-]+$"
require_classification = true
set = { CKA_PRIVATE = true }
"#;

const TRUE: &[u8] = &[CK_TRUE];
const FALSE: &[u8] = &[CK_FALSE];

pub(super) fn ul(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn decide_create(p: &Policy, who: &Principal, c: &Creation<'_, '_>) -> CreateDecision {
    let s = p.resolve(who);
    p.decide_create(&s, c)
}

pub(super) fn pair(
    p: &Policy,
    mech: CK_MECHANISM_TYPE,
    public: &[Attr<'_>],
    private: &[Attr<'_>],
) -> CreateDecision {
    let (pt, t) = match (Template::parse(public), Template::parse(private)) {
        (Ok(a), Ok(b)) => (a, b),
        _ => panic!("template"),
    };
    decide_create(
        p,
        &user("alice"),
        &Creation {
            kind: CreationKind::GenerateKeyPair,
            mechanism: Some(mech),
            template: &t,
            public_template: Some(&pt),
            source: None,
        },
    )
}

pub(super) fn single(
    p: &Policy,
    who: &str,
    kind: CreationKind,
    mech: Option<CK_MECHANISM_TYPE>,
    attrs: &[Attr<'_>],
) -> CreateDecision {
    let Ok(t) = Template::parse(attrs) else {
        panic!("template")
    };
    decide_create(
        p,
        &user(who),
        &Creation {
            kind,
            mechanism: mech,
            template: &t,
            public_template: None,
            source: None,
        },
    )
}

pub(super) fn rsa(p: &Policy, bits: CK_ULONG) -> CreateDecision {
    let b = ul(bits);
    pair(
        p,
        CKM_RSA_PKCS_KEY_PAIR_GEN,
        &[
            Attr::new(CKA_MODULUS_BITS, &b),
            Attr::new(CKA_LABEL, b"app-rsa"),
        ],
        &[Attr::new(CKA_LABEL, b"app-rsa")],
    )
}

#[test]
fn sensitive_and_extractable_are_forced_or_refused() {
    let p = compile(POLICY);
    let len = ul(32);
    let gen = |who: &str, extra: &[Attr<'_>]| {
        let mut attrs = vec![
            Attr::new(CKA_VALUE_LEN, &len),
            Attr::new(CKA_LABEL, b"app-k"),
        ];
        attrs.extend_from_slice(extra);
        single(
            &p,
            who,
            CreationKind::Generate,
            Some(CKM_AES_KEY_GEN),
            &attrs,
        )
    };
    let d = gen("alice", &[Attr::new(CKA_SENSITIVE, FALSE)]);
    assert_eq!(
        (d.decision.allow, d.decision.rule.to_string()),
        (false, "creation.sensitive".into())
    );
    assert_eq!(d.decision.rv, CKR_TEMPLATE_INCONSISTENT);
    let d = gen("alice", &[Attr::new(CKA_EXTRACTABLE, TRUE)]);
    assert_eq!(d.decision.rule.to_string(), "creation.extractable");
    // Stated the safe way: nothing to force for those two.
    let d = gen(
        "alice",
        &[
            Attr::new(CKA_SENSITIVE, TRUE),
            Attr::new(CKA_EXTRACTABLE, FALSE),
            Attr::new(CKA_PRIVATE, TRUE),
        ],
    );
    assert!(d.decision.allow);
    assert!(d.force.is_empty(), "{:?}", d.force);
    // A rule allowing export lifts both requirements, not `set`.
    let d = gen(
        "exporter",
        &[
            Attr::new(CKA_EXTRACTABLE, TRUE),
            Attr::new(CKA_SENSITIVE, FALSE),
        ],
    );
    assert!(d.decision.allow, "{:?}", d.decision);
    let d = gen("alice", &[Attr::new(CKA_PRIVATE, FALSE)]);
    assert_eq!(d.decision.rule.to_string(), "creation.attribute");
}

#[test]
fn labels_and_classification() {
    let p = compile(POLICY);
    let len = ul(32);
    let gen = |label: &[u8]| {
        single(
            &p,
            "alice",
            CreationKind::Generate,
            Some(CKM_AES_KEY_GEN),
            &[Attr::new(CKA_VALUE_LEN, &len), Attr::new(CKA_LABEL, label)],
        )
    };
    assert_eq!(gen(b"App Key").decision.rule.to_string(), "creation.label");
    // Matches the naming rule but no keyset classifies it.
    assert_eq!(
        gen(b"misc-key").decision.rule.to_string(),
        "creation.classification"
    );
    let d = single(
        &p,
        "alice",
        CreationKind::Generate,
        Some(CKM_AES_KEY_GEN),
        &[Attr::new(CKA_VALUE_LEN, &len)],
    );
    assert_eq!(d.decision.rule.to_string(), "creation.label");
    assert_eq!(gen(b"test-key").classification, Level::Low);
    // A High key is above the creator's clearance (Medium-High).
    let d = gen(b"high-key");
    assert_eq!(
        (d.decision.allow, d.decision.rule.to_string()),
        (false, "mac-clearance".into())
    );
    assert_eq!(d.decision.rv, CKR_TEMPLATE_INCONSISTENT);
}

#[test]
fn a_copy_may_not_loosen_its_source() {
    let p = compile(POLICY);
    let mut source = key("app-1", CKO_PRIVATE_KEY);
    source.sensitive = Some(true);
    source.extractable = Some(false);
    source.bits = None;
    source.curve = Some(EcCurve::P256);
    let copy = |attrs: &[Attr<'_>], src: &KeyFacts| {
        let Ok(t) = Template::parse(attrs) else {
            panic!("template")
        };
        decide_create(
            &p,
            &user("alice"),
            &Creation {
                kind: CreationKind::Copy,
                mechanism: None,
                template: &t,
                public_template: None,
                source: Some(src),
            },
        )
    };
    let d = copy(&[Attr::new(CKA_EXTRACTABLE, TRUE)], &source);
    assert_eq!(
        (d.decision.allow, d.decision.rule.to_string()),
        (false, "copy.loosening".into())
    );
    assert_eq!(d.decision.rv, CKR_TEMPLATE_INCONSISTENT);
    let d = copy(&[Attr::new(CKA_SENSITIVE, FALSE)], &source);
    assert_eq!(d.decision.rule.to_string(), "copy.loosening");
    // Even an exporter may not loosen a copy.
    let Ok(t) = Template::parse(&[Attr::new(CKA_EXTRACTABLE, TRUE)]) else {
        panic!()
    };
    let s = p.resolve(&user("exporter"));
    let d = p.decide_create(
        &s,
        &Creation {
            kind: CreationKind::Copy,
            mechanism: None,
            template: &t,
            public_template: None,
            source: Some(&source),
        },
    );
    assert!(!d.decision.allow);
    // Relabelling to a lower classification is loosening too.
    let d = copy(&[Attr::new(CKA_LABEL, b"test-1")], &source);
    assert_eq!(d.decision.rule.to_string(), "copy.loosening");
    // A plain copy is allowed by the copy rule.
    let d = copy(&[Attr::new(CKA_LABEL, b"app-2")], &source);
    assert!(d.decision.allow, "{:?}", d.decision);
    assert_eq!(d.decision.rule.to_string(), "make");
    // A loose legacy source is tightened on copy.
    let mut loose = source.clone();
    loose.sensitive = Some(false);
    loose.extractable = None;
    let d = copy(&[], &loose);
    assert!(d.decision.allow);
    assert!(d.force.contains(&(CKA_EXTRACTABLE, false)), "{:?}", d.force);
}

#[test]
fn set_attribute_may_not_loosen() {
    let p = compile(POLICY);
    let s = p.resolve(&user("alice"));
    let mut k = key("app-1", CKO_SECRET_KEY);
    k.sensitive = Some(true);
    k.extractable = Some(false);
    let edit = |attrs: &[Attr<'_>]| {
        let Ok(t) = Template::parse(attrs) else {
            panic!()
        };
        p.decide_set_attributes(&s, &k, &t)
    };
    assert!(edit(&[Attr::new(CKA_LABEL, b"app-2")]).allow);
    for bad in [
        vec![Attr::new(CKA_SENSITIVE, FALSE)],
        vec![Attr::new(CKA_EXTRACTABLE, TRUE)],
        vec![Attr::new(CKA_PRIVATE, FALSE)],
        vec![Attr::new(CKA_LABEL, b"test-1")],
    ] {
        let d = edit(&bad);
        assert_eq!((d.allow, d.rv), (false, CKR_ACTION_PROHIBITED), "{bad:?}");
        assert_eq!(d.rule.to_string(), "set-attribute.loosening");
    }
    // Without a set-attribute rule: refused by default deny.
    let text = POLICY.replace("\"copy\", \"set-attribute\"", "\"copy\"");
    let p2 = compile(&text);
    let s2 = p2.resolve(&user("alice"));
    let Ok(t) = Template::parse(&[Attr::new(CKA_LABEL, b"app-2")]) else {
        panic!()
    };
    let d = p2.decide_set_attributes(&s2, &k, &t);
    assert_eq!(
        (d.allow, d.rv, d.rule.to_string()),
        (false, CKR_ACTION_PROHIBITED, "default-deny".into())
    );
}

#[test]
fn generation_needs_a_rule() {
    let text = POLICY.replace("ops = [\"generate\", ", "ops = [");
    let p = compile(&text);
    let d = rsa(&p, 4096);
    assert_eq!(
        (d.decision.allow, d.decision.rule.to_string()),
        (false, "default-deny".into())
    );
    assert_eq!(d.decision.rv, CKR_TEMPLATE_INCONSISTENT);
}

#[test]
fn baseline_defaults_without_a_creation_section() {
    let p = compile(
        r#"
        version = 1
        [roles]
        all = { members = ["*"], clearance = "High" }
        [[rule]]
        id = "gen"
        roles = ["all"]
        ops = ["generate"]
        "#,
    );
    assert!(!rsa(&p, 1024).decision.allow);
    let d = rsa(&p, 3072);
    assert!(d.decision.allow);
    assert!(d.force.contains(&(CKA_SENSITIVE, true)));
    // No label rule by default.
    let len = ul(16);
    assert!(
        single(
            &p,
            "a",
            CreationKind::Generate,
            Some(CKM_AES_KEY_GEN),
            &[Attr::new(CKA_VALUE_LEN, &len)]
        )
        .decision
        .allow
    );
}
