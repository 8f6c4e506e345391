//! The README's "Getting started" block runs as written (with this build's module
//! and binary instead of a release build, and its two "edit the configuration" steps
//! done with sed), so the page a newcomer follows first cannot drift from the code.
mod common;

use std::process::Command;

/// The first ```sh block after the "## Getting started" heading.
fn getting_started() -> String {
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).unwrap();
    let section = &readme[readme
        .find("## Getting started")
        .expect("a Getting started section")..];
    let start = section.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = start + section[start..].find("```").expect("the block's end");
    section[start..end].to_owned()
}

#[test]
fn the_readme_getting_started_block_runs() {
    let block = getting_started();
    let profile_dir = common::keywarden_module()
        .parent()
        .unwrap()
        .display()
        .to_string();
    // What a person does by hand (install, build, edit two lines), done here.
    let edits = [
        ("sudo ./softhsm-config/install-deps.sh", "true"),
        ("cargo build --release", "true"),
        ("$PWD/target/release", profile_dir.as_str()),
        (
            "#    pin_file = \"$W/kw/token.pin\"",
            "sed -i \"s|^module = .*|&\\npin_file = \\\"$W/kw/token.pin\\\"|\" kw/keywarden.toml",
        ),
        (
            "keywarden audit init-seal-key --token demo   # then set seal_token = \"demo\" under [audit]",
            "keywarden audit init-seal-key --token demo\n\
             sed -i 's|^# seal_token = \"audit-token\"|seal_token = \"demo\"|' kw/keywarden.toml",
        ),
        // The refused signature must be refused.
        ("-o sig  # refused", "-o sig && exit 9 || true"),
    ];
    let mut script = block.clone();
    for (from, to) in edits {
        assert!(
            script.contains(from),
            "the README no longer has {from:?}:\n{block}"
        );
        script = script.replace(from, to);
    }
    let scratch = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(common::repo_root())
        .env("TMPDIR", scratch.path())
        .env_remove("KEYWARDEN_CONF")
        .env_remove("SOFTHSM2_CONF")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // What the block promises a newcomer sees.
    assert!(
        stderr.contains("CKR_KEY_FUNCTION_NOT_PERMITTED"),
        "{stderr}"
    );
    assert!(stdout.contains("DENIED rule=lifecycle.state"), "{stdout}");
    assert!(stdout.contains("OK: chain intact"), "{stdout}");
}
