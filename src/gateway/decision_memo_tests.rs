use super::*;
use crate::identity::ProcessFacts;
use crate::policy::{Login, Principal, SystemClock};
use crate::store::Snapshot;

fn policy() -> Arc<Policy> {
    let text = "version = 1\n[roles]\nall = { members = [\"*\"], clearance = \"Low\" }\n";
    Arc::new(Policy::compile(text, "test", Arc::new(SystemClock)).unwrap())
}

/// One of each thing a decision is made from.
struct Parts {
    policy: Arc<Policy>,
    subject: Arc<Subject>,
    facts: Arc<KeyFacts>,
    index: Arc<LifecycleIndex>,
    serial: Arc<str>,
}

impl Parts {
    fn new() -> Parts {
        let policy = policy();
        let principal = Principal::from_process(&ProcessFacts::observe(), Login::User, None);
        Parts {
            subject: Arc::new(policy.resolve(&principal)),
            policy,
            facts: Arc::new(KeyFacts::labelled("k")),
            index: Arc::new(LifecycleIndex::new(Snapshot::default())),
            serial: Arc::from("0123"),
        }
    }

    fn basis(&self) -> Basis<'_> {
        Basis {
            policy: &self.policy,
            subject: &self.subject,
            facts: &self.facts,
            index: &self.index,
            serial: &self.serial,
            object: 7,
            op: Op::Sign,
            mechanism: Some(pkcs11_sys::CKM_ECDSA),
            second: 1_000,
        }
    }
}

#[test]
fn a_kept_decision_is_reused_only_on_the_same_basis() {
    let memo = DecisionMemo::default();
    let a = Parts::new();
    assert_eq!(memo.reuse(1, &a.basis()), None, "nothing kept yet");
    memo.keep(1, &a.basis(), Some(VersionId(3)));
    assert_eq!(memo.reuse(1, &a.basis()), Some(Some(VersionId(3))));
    assert_eq!(memo.reuse(2, &a.basis()), None, "another session");

    // Equal but not the same objects: a reload, a new login, re-read facts, a
    // rebuilt index or a re-read serial each decide afresh.
    let b = Parts::new();
    let changes: [(&str, Basis<'_>); 10] = [
        (
            "policy",
            Basis {
                policy: &b.policy,
                ..a.basis()
            },
        ),
        (
            "subject",
            Basis {
                subject: &b.subject,
                ..a.basis()
            },
        ),
        (
            "facts",
            Basis {
                facts: &b.facts,
                ..a.basis()
            },
        ),
        (
            "index",
            Basis {
                index: &b.index,
                ..a.basis()
            },
        ),
        (
            "serial",
            Basis {
                serial: &b.serial,
                ..a.basis()
            },
        ),
        (
            "object",
            Basis {
                object: 8,
                ..a.basis()
            },
        ),
        (
            "operation",
            Basis {
                op: Op::Verify,
                ..a.basis()
            },
        ),
        (
            "mechanism",
            Basis {
                mechanism: Some(pkcs11_sys::CKM_ECDSA_SHA256),
                ..a.basis()
            },
        ),
        (
            "no mechanism",
            Basis {
                mechanism: None,
                ..a.basis()
            },
        ),
        (
            "next second",
            Basis {
                second: 1_001,
                ..a.basis()
            },
        ),
    ];
    for (what, basis) in &changes {
        assert_eq!(
            memo.reuse(1, basis),
            None,
            "a different {what} reused the decision"
        );
    }
    assert_eq!(memo.reuse(1, &a.basis()), Some(Some(VersionId(3))));
}

#[test]
fn one_decision_per_session_and_closing_forgets_it() {
    let memo = DecisionMemo::default();
    let a = Parts::new();
    memo.keep(1, &a.basis(), None);
    memo.keep(
        1,
        &Basis {
            object: 8,
            ..a.basis()
        },
        None,
    );
    assert_eq!(
        memo.reuse(1, &a.basis()),
        None,
        "replaced by the later decision"
    );
    assert_eq!(
        memo.reuse(
            1,
            &Basis {
                object: 8,
                ..a.basis()
            }
        ),
        Some(None)
    );

    // Sessions 1 and 17 share a shard.
    memo.keep(17, &a.basis(), None);
    memo.keep(2, &a.basis(), None);
    memo.forget_session(1);
    assert_eq!(
        memo.reuse(
            1,
            &Basis {
                object: 8,
                ..a.basis()
            }
        ),
        None
    );
    assert_eq!(memo.reuse(17, &a.basis()), Some(None));
    assert_eq!(memo.len(), 2);
    memo.forget_all();
    assert_eq!(memo.len(), 0);
}

#[test]
fn an_entry_holds_its_basis_alive() {
    // A kept `Arc` cannot be freed and its address given to a new object that
    // would then compare equal.
    let memo = DecisionMemo::default();
    let a = Parts::new();
    memo.keep(1, &a.basis(), None);
    assert_eq!(Arc::strong_count(&a.policy), 2);
    assert_eq!(Arc::strong_count(&a.facts), 2);
    memo.forget_session(1);
    assert_eq!(Arc::strong_count(&a.policy), 1);
}
