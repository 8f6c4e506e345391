//! Real clients see enforce mode's refusals as the documented codes: pkcs11-tool
//! prints the CKR name, OpenSSL's libp11 engine the code's text and number.
mod common;

use std::process::Output;

const POLICY: &str = r#"
version = 1
[settings]
default_classification = "Medium"
[roles]
users = { members = ["*"], clearance = "Medium-High" }
[[rule]]
id = "verify-and-generate"
roles = ["users"]
ops = ["verify", "generate"]
"#;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn pkcs11_tool(env: &common::TestEnv, args: &[&str]) -> Output {
    env.command("pkcs11-tool")
        .arg("--module")
        .arg(common::keywarden_module())
        .args([
            "--token-label",
            common::TOKEN_LABEL,
            "--login",
            "--pin",
            common::USER_PIN,
        ])
        .args(args)
        .output()
        .expect("run pkcs11-tool (softhsm-config/install-deps.sh installs it)")
}

#[test]
fn pkcs11_tool_and_openssl_see_the_documented_codes() {
    let env = common::TestEnv::new();
    // Made while transparent: an EC key no rule lets anyone sign with (it stays
    // visible through the verify rule, so the clients find it).
    let out = pkcs11_tool(
        &env,
        &[
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            "no-sign",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    env.enforce(POLICY);
    let data = env.path().join("data");
    std::fs::write(&data, b"hello\n").unwrap();
    let sig = env.path().join("sig");

    let out = pkcs11_tool(
        &env,
        &[
            "--sign",
            "--mechanism",
            "ECDSA-SHA256",
            "--label",
            "no-sign",
            "--input-file",
            data.to_str().unwrap(),
            "--output-file",
            sig.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("C_SignInit failed: rv = CKR_KEY_FUNCTION_NOT_PERMITTED"),
        "{}",
        text(&out)
    );

    let out = pkcs11_tool(
        &env,
        &["--keypairgen", "--key-type", "rsa:1024", "--label", "small"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("C_GenerateKeyPair failed: rv = CKR_TEMPLATE_INCONSISTENT"),
        "{}",
        text(&out)
    );
    let out = pkcs11_tool(
        &env,
        &["--keypairgen", "--key-type", "rsa:2048", "--label", "big"],
    );
    assert!(out.status.success(), "{}", text(&out));

    let uri = format!(
        "pkcs11:token={};object=no-sign;type=private;pin-value={}",
        common::TOKEN_LABEL,
        common::USER_PIN
    );
    let out = env
        .command("openssl")
        .env("PKCS11_MODULE_PATH", common::keywarden_module())
        .args([
            "dgst", "-sha256", "-engine", "pkcs11", "-keyform", "engine", "-sign",
        ])
        .arg(&uri)
        .arg("-out")
        .arg(&sig)
        .arg(&data)
        .output()
        .expect("run openssl");
    assert!(!out.status.success());
    // libp11 reports the CKR as its reason: text and code (0x68).
    let t = text(&out);
    assert!(
        t.contains("Key function not permitted") && t.contains(":41800068:"),
        "{t}"
    );
}
