//! Real clients see enforce mode's refusals as the documented codes: pkcs11-tool
//! prints the CKR name, OpenSSL's libp11 engine the code's text and number, Java's
//! SunPKCS11 a `PKCS11Exception` named after the CKR (tests/java/TrySign.java).
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

const JAVA_POLICY: &str = r#"
version = 1
[settings]
default_classification = "Medium"
always_visible = ["certificate", "public-key"]
[roles]
users = { members = ["*"], clearance = "Medium-High" }
[[rule]]
id = "java-sign"
roles = ["users"]
ops = ["sign"]
keys = { id = ["@OK@", "@RSA@"] }
mechanisms = ["CKM_ECDSA", "CKM_SHA256_RSA_PKCS"]
[[rule]]
id = "verify"
roles = ["users"]
ops = ["verify"]
"#;

/// The hex `CKA_ID` SunPKCS11 gives a key pair made by `keytool`: its alias.
fn alias_id(alias: &str) -> String {
    alias.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn java_sunpkcs11_sees_the_documented_codes() {
    let env = common::TestEnv::new();
    let classes = env.path().join("classes");
    let out = env
        .command("javac")
        .arg("-d")
        .arg(&classes)
        .arg(common::repo_root().join("tests/java/TrySign.java"))
        .output()
        .expect("run javac (softhsm-config/install-deps.sh installs openjdk-17-jdk-headless)");
    assert!(out.status.success(), "{}", text(&out));

    // The slot ID, looked up by label while the module is still transparent.
    let slot = {
        let p11 = common::load(&common::keywarden_module());
        common::test_slot(&p11).id()
    };
    let cfg = env.path().join("p11.cfg");
    std::fs::write(
        &cfg,
        format!(
            "name = keywarden\nlibrary = {}\nslot = {slot}\n",
            common::keywarden_module().display()
        ),
    )
    .unwrap();
    let keystore = |args: &[&str]| {
        let out = env
            .command("keytool")
            .args(args)
            .args(["-keystore", "NONE", "-storetype", "PKCS11"])
            .args(["-addprovider", "SunPKCS11", "-providerArg"])
            .arg(&cfg)
            .args(["-storepass", common::USER_PIN])
            .output()
            .expect("run keytool");
        assert!(out.status.success(), "keytool {args:?}: {}", text(&out));
    };
    // Made while transparent: key pairs with certificates (SunPKCS11 lists a private
    // key only with a certificate of the same CKA_ID).
    for (alias, alg, sigalg) in [
        ("java-ok", "EC", "SHA256withECDSA"),
        ("java-no", "EC", "SHA256withECDSA"),
        ("java-rsa", "RSA", "SHA256withRSA"),
    ] {
        keystore(&[
            "-genkeypair",
            "-alias",
            alias,
            "-keyalg",
            alg,
            "-sigalg",
            sigalg,
            "-dname",
            "CN=keywarden-test",
            "-validity",
            "2",
        ]);
    }
    env.enforce(
        &JAVA_POLICY
            .replace("@OK@", &alias_id("java-ok"))
            .replace("@RSA@", &alias_id("java-rsa")),
    );

    let out = env
        .command("java")
        .arg("-cp")
        .arg(&classes)
        .arg("TrySign")
        .arg(&cfg)
        .arg(common::USER_PIN)
        .args([
            "java-ok:SHA256withECDSA",
            "java-no:SHA256withECDSA",
            "java-rsa:SHA256withRSA",
            "java-rsa:SHA384withRSA",
        ])
        .output()
        .expect("run java");
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let line = |prefix: &str| {
        t.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{t}"))
            .to_string()
    };
    // Allowed: the same run signs (SunPKCS11 hashes in Java and signs with CKM_ECDSA,
    // the only ECDSA mechanism SoftHSM offers) and the signature verifies.
    line("signed java-ok SHA256withECDSA");
    line("signed java-rsa SHA256withRSA");
    // No rule lets anyone sign with java-no: the key's code.
    let no = line("refused java-no SHA256withECDSA:");
    assert!(
        no.contains("PKCS11Exception: CKR_KEY_FUNCTION_NOT_PERMITTED"),
        "{t}"
    );
    // java-rsa may sign, but only with CKM_SHA256_RSA_PKCS: the mechanism's code.
    let mech = line("refused java-rsa SHA384withRSA:");
    assert!(
        mech.contains("PKCS11Exception: CKR_MECHANISM_INVALID"),
        "{t}"
    );
}
