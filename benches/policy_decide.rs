//! Policy decision time, without a token: `cargo bench --bench policy_decide`.
//!
//! Generated policies of 50 and 1000 rules (roles, keysets, label globs, mechanism
//! lists, deny rules, time windows, grants), one resolved caller, and these requests:
//! an allow matched late in its operation's bucket, a default deny that scans the
//! whole bucket, a MAC refusal, `may_see`, and `PolicyHandle::load` + decide (the
//! gateway's hot path). Each figure is the median of 15 batches, in ns per call.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use keywarden::policy::{
    KeyFacts, Login, ManualClock, Op, Policy, PolicyHandle, Principal, Request,
};
use pkcs11_sys::*;

const OPS: [&str; 6] = ["sign", "verify", "encrypt", "decrypt", "derive", "unwrap"];
const MECHS: [&str; 4] = [
    "CKM_ECDSA",
    "CKM_ECDSA_SHA256",
    "CKM_RSA_PKCS_PSS",
    "CKM_AES_GCM",
];

/// A policy of `rules` rules; the caller (user "u6") holds role r6 (clearance
/// Medium-High), and the rule that allows its request is the last sign rule.
fn policy_text(rules: usize) -> String {
    let roles = 20.min(rules / 2).max(8);
    let mut t = String::from("version = 1\n[settings]\nutc_offset = \"+01:00\"\ndefault_classification = \"Medium\"\n[principals]\n");
    for r in 0..roles {
        t += &format!("p{r} = {{ user = \"u{r}\", exe = \"/opt/app{r}/bin/*\" }}\n");
    }
    t += "[roles]\n";
    for r in 0..roles {
        let level = ["Low", "Medium", "Medium-High", "High"][r % 4];
        t += &format!("r{r} = {{ members = [\"p{r}\"], clearance = \"{level}\" }}\n");
    }
    for k in 0..10 {
        let level = ["Low", "Medium", "High"][k % 3];
        t += &format!("[[keyset]]\nname = \"ks{k}\"\nlabel = \"team{k}-*\"\nclassification = \"{level}\"\nowner = \"r{}\"\n", k % roles);
    }
    for i in 0..rules {
        let role = i % roles;
        let op = OPS[i % OPS.len()];
        let mech = MECHS[i % MECHS.len()];
        let effect = if i % 11 == 5 {
            "effect = \"deny\"\n"
        } else {
            ""
        };
        let when = if i % 7 == 3 {
            "when = { days = [\"mon-fri\"], hours = \"07:00-19:00\" }\n"
        } else {
            ""
        };
        t += &format!(
            "[[rule]]\nid = \"rule{i}\"\n{effect}roles = [\"r{role}\"]\nops = [\"{op}\"]\nkeys = {{ label = [\"app{i}-*\", \"svc{i}\"], class = \"private-key\" }}\nmechanisms = [\"{mech}\", \"CKM_SHA256_RSA_PKCS\"]\n{when}\n"
        );
    }
    // The rule the measured request matches: last in the sign bucket.
    t += "[[rule]]\nid = \"target\"\nroles = [\"r6\"]\nops = [\"sign\", \"verify\"]\nkeys = { label = \"prod-*\", class = \"private-key\" }\nmechanisms = [\"CKM_ECDSA\"]\nwhen = { days = [\"mon-fri\"] }\n";
    t
}

fn median_ns(mut f: impl FnMut() -> bool, iters: u32) -> f64 {
    let mut samples = Vec::new();
    for _ in 0..15 {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(f());
        }
        samples.push(start.elapsed().as_nanos() as f64 / f64::from(iters));
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    // Monday 2024-01-01 10:00 UTC.
    let clock = Arc::new(ManualClock::at(1_704_067_200 + 10 * 3600));
    let caller = Principal {
        uid: Some(1006),
        user: Some("u6".into()),
        gids: vec![1006],
        groups: vec!["u6".into()],
        exe: Some("/opt/app6/bin/tool".into()),
        host: Some("host".into()),
        login: Login::User,
        identity: None,
    };
    let key = |label: &str| KeyFacts {
        class: Some(CKO_PRIVATE_KEY),
        key_type: Some(CKK_EC),
        label: Some(label.into()),
        ..KeyFacts::default()
    };
    let prod = key("prod-signing-1");
    let other = key("unrelated-key");
    // Matched by the target rule, but recorded High: a MAC refusal.
    let high = KeyFacts {
        classification: Some(keywarden::policy::Level::High),
        ..key("prod-root")
    };
    println!(
        "{:>6} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "rules", "bucket", "allow", "deny", "mac", "may_see", "handle", "resolve"
    );
    for rules in [50usize, 1000] {
        let text = policy_text(rules);
        let p = match Policy::compile(&text, "bench", clock.clone()) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        let s = p.resolve(&caller);
        let decide = |k: &KeyFacts, mech| {
            p.decide(&Request {
                subject: &s,
                op: Op::Sign,
                key: Some(k),
                mechanism: Some(mech),
            })
        };
        assert!(
            decide(&prod, CKM_ECDSA).allow,
            "{:?}",
            decide(&prod, CKM_ECDSA)
        );
        assert_eq!(decide(&other, CKM_ECDSA).rule.to_string(), "default-deny");
        assert_eq!(decide(&high, CKM_ECDSA).rule.to_string(), "mac-clearance");
        let iters = if rules > 100 { 20_000 } else { 200_000 };
        let allow = median_ns(|| decide(&prod, CKM_ECDSA).allow, iters);
        let deny = median_ns(|| decide(&other, CKM_ECDSA).allow, iters);
        let mac = median_ns(|| decide(&high, CKM_ECDSA).allow, iters);
        let see = median_ns(|| p.may_see(&s, &prod), iters / 4);
        let dir =
            std::env::temp_dir().join(format!("keywarden-bench-{}-{rules}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("policy.toml");
        let _ = std::fs::write(&file, &text);
        let handle = match PolicyHandle::open(&file, clock.clone()) {
            Ok(h) => h,
            Err(e) => panic!("{e}"),
        };
        let hs = handle.load().resolve(&caller);
        let via_handle = median_ns(
            || {
                handle
                    .load()
                    .decide(&Request {
                        subject: &hs,
                        op: Op::Sign,
                        key: Some(&prod),
                        mechanism: Some(CKM_ECDSA),
                    })
                    .allow
            },
            iters,
        );
        let resolve = median_ns(|| p.resolve(&caller).generation() > 0, iters / 20);
        let _ = std::fs::remove_dir_all(&dir);
        let bucket = rules.div_ceil(OPS.len()) + 1;
        println!("{rules:>6} {bucket:>6} {allow:>8.0}ns {deny:>8.0}ns {mac:>8.0}ns {see:>8.0}ns {via_handle:>8.0}ns {resolve:>8.0}ns");
    }
}
