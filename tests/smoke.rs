mod common;

#[test]
fn lists_the_token_through_keywarden() {
    let _env = common::TestEnv::new();
    let p11 = common::load(&common::keywarden_module());
    let slot = common::test_slot(&p11);
    assert_eq!(
        p11.get_token_info(slot).unwrap().label(),
        common::TOKEN_LABEL
    );
}
