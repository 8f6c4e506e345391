//! Shared by the `audit_gateway*` tests: the trail read back record by record, and
//! the expected op records a test checks them against.
#![allow(dead_code)]

use serde_json::Value;

use crate::common;

/// Reads the trail and hands out the records added since the last look (seals
/// aside: they come whenever the writer decides).
pub struct Trail {
    pub dir: std::path::PathBuf,
    pub seen: usize,
}

impl Trail {
    pub fn new(env: &common::TestEnv) -> Trail {
        Trail {
            dir: env.path().join("audit"),
            seen: 0,
        }
    }

    pub fn all(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for f in keywarden::audit::list_files(&self.dir).unwrap() {
            for line in std::fs::read_to_string(f).unwrap().lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                if v["kind"] != "seal" {
                    out.push(v);
                }
            }
        }
        out
    }

    pub fn new_records(&mut self) -> Vec<Value> {
        let all = self.all();
        let fresh = all[self.seen..].to_vec();
        self.seen = all.len();
        fresh
    }
}

/// One expected op record: the fields a row checks (None: not checked, except
/// that `key` None means the record names no key).
#[derive(Debug, Default, Clone)]
pub struct Expect {
    pub function: &'static str,
    pub rv: &'static str,
    pub deny_rule: Option<&'static str>,
    pub key: Option<&'static str>,
    pub key_id: Option<&'static str>,
    pub mechanism: Option<&'static str>,
    pub bytes: Option<(u64, u64)>,
    pub identity: Option<&'static str>,
}

pub fn ok(function: &'static str) -> Expect {
    Expect {
        function,
        rv: "CKR_OK",
        ..Expect::default()
    }
}

pub fn check(row: &str, got: &[Value], want: &[Expect]) {
    let names: Vec<_> = got.iter().map(|r| r["function"].clone()).collect();
    assert_eq!(
        got.len(),
        want.len(),
        "{row}: records {names:?}, want {want:?}"
    );
    for (r, w) in got.iter().zip(want) {
        let ctx = format!("{row}: {r}");
        assert_eq!(r["kind"], "op", "{ctx}");
        assert_eq!(r["function"], w.function, "{ctx}");
        assert_eq!(r["rv"], w.rv, "{ctx}");
        match w.deny_rule {
            Some(rule) => {
                assert_eq!(r["decision"], "deny", "{ctx}");
                assert_eq!(r["rule"], rule, "{ctx}");
            }
            None => {
                assert_eq!(r["decision"], "allow", "{ctx}");
                assert_eq!(r["rule"], Value::Null, "{ctx}");
            }
        }
        match w.key {
            Some(label) => assert_eq!(r["key_label"], label, "{ctx}"),
            None => assert_eq!(r["key_label"], Value::Null, "{ctx}"),
        }
        if let Some(id) = w.key_id {
            assert_eq!(r["key_id"], id, "{ctx}");
        }
        if let Some(m) = w.mechanism {
            let text = r["mechanism"].as_str().unwrap_or("");
            assert!(text.starts_with(m), "{ctx}: mechanism {text:?}, want {m:?}");
        }
        if let Some((i, o)) = w.bytes {
            assert_eq!(
                (r["bytes_in"].as_u64(), r["bytes_out"].as_u64()),
                (Some(i), Some(o)),
                "{ctx}"
            );
        }
        match w.identity {
            Some(id) => assert_eq!(r["identity"], id, "{ctx}"),
            None => assert_eq!(r["identity"], Value::Null, "{ctx}"),
        }
        // Context every op record carries.
        assert!(r["slot"].is_u64(), "{ctx}");
        assert!(r["token"].as_str().is_some_and(|t| !t.is_empty()), "{ctx}");
        assert!(r["duration_us"].is_u64(), "{ctx}");
        assert_eq!(r["pid"], std::process::id(), "{ctx}");
    }
}

pub fn audit_verify(env: &common::TestEnv) {
    env.cli(&["audit", "verify"]);
}
