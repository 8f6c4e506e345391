//! The audit trail written by libkeywarden.so on SoftHSM when a process exits
//! without `C_Finalize`: the records the writer still held reach the trail, which
//! `keywarden audit verify` accepts.
mod audit_gateway_support;
mod common;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::UserType;

use audit_gateway_support::{audit_verify, Trail};
use common::P256;

const EXIT_CHILD: &str = "KEYWARDEN_AUDIT_EXIT_CHILD";

/// The child of `buffered_records_reach_the_trail_when_a_process_exits_without_finalize`.
#[test]
#[ignore = "run by buffered_records_reach_the_trail_when_a_process_exits_without_finalize"]
fn exit_without_finalize_in_child() {
    std::env::var(EXIT_CHILD).expect("run by the parent test");
    let p11 = common::load(&common::keywarden_module());
    let slot = common::test_slot(&p11);
    let s = p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&common::pin(common::USER_PIN)))
        .unwrap();
    let (_, key) = s
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::Token(false), Attribute::EcParams(P256.to_vec())],
            &[Attribute::Token(false), Attribute::Sign(true)],
        )
        .unwrap();
    s.sign(&Mechanism::Ecdsa, key, &[1u8; 32]).unwrap();
    // exit(3) runs the library's destructors, not Rust's drops: no C_Finalize.
    std::process::exit(0);
}

#[test]
fn buffered_records_reach_the_trail_when_a_process_exits_without_finalize() {
    let env = common::TestEnv::new();
    let out = env
        .command(std::env::current_exe().unwrap())
        .args(["--exact", "exit_without_finalize_in_child", "--ignored"])
        .env(EXIT_CHILD, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let trail = Trail::new(&env);
    let all = trail.all();
    let functions: Vec<_> = all.iter().map(|r| r["function"].clone()).collect();
    assert!(
        all.iter()
            .any(|r| r["function"] == "C_Sign" && r["rv"] == "CKR_OK"),
        "the last operation's record was flushed at exit: {functions:?}"
    );
    // No C_Finalize: no stop record.
    assert!(!all.iter().any(|r| r["what"] == "stop"), "{all:?}");
    audit_verify(&env);
}
