use super::*;

fn findings(text: &str) -> Vec<(FindingKind, usize)> {
    compile(text)
        .lint()
        .into_iter()
        .map(|f| (f.kind, f.line))
        .collect()
}

const HEAD: &str = r#"version = 1
[principals]
a = { user = "a" }
b = { user = "b" }
[roles]
low = { members = ["a"], clearance = "Low" }
high = { members = ["b"], clearance = "High" }
[[keyset]]
name = "vault"
label = "vault-*"
classification = "High"
"#;

#[test]
fn shadowed_rules() {
    let text = format!(
        "{HEAD}
[[rule]]
id = \"broad\"
roles = [\"high\"]
ops = [\"sign\", \"verify\"]
keys = {{ label = \"app-*\" }}

[[rule]]
id = \"narrow\"
roles = [\"high\"]
ops = [\"sign\"]
keys = {{ label = \"app-one\", class = \"private-key\" }}
mechanisms = [\"CKM_ECDSA\"]

[[rule]]
id = \"other-label\"
roles = [\"high\"]
ops = [\"sign\"]
keys = {{ label = \"web-*\" }}

[[rule]]
id = \"deny-after\"
effect = \"deny\"
roles = [\"high\"]
ops = [\"verify\"]
keys = {{ label = \"app-*\" }}
when = {{ login = \"user\" }}

[[rule]]
id = \"low-too\"
roles = [\"low\", \"high\"]
ops = [\"sign\"]
keys = {{ label = \"app-x\" }}
"
    );
    let f = compile(&text).lint();
    let shadowed: Vec<&str> = f
        .iter()
        .filter(|f| f.kind == FindingKind::Shadowed)
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(shadowed.len(), 2, "{f:#?}");
    assert!(shadowed[0].contains("\"narrow\"") && shadowed[0].contains("\"broad\""));
    assert!(shadowed[1].contains("\"deny-after\"") && shadowed[1].contains("opposite effect"));
}

#[test]
fn unreachable_rules() {
    let text = format!(
        "{HEAD}
[[rule]]
id = \"never\"
roles = [\"high\"]
ops = [\"sign\"]
when = {{ hours = \"10:00-10:00\" }}

[[rule]]
id = \"sign-public\"
roles = [\"high\"]
ops = [\"sign\", \"decrypt\"]
keys = {{ class = \"public-key\" }}

[[rule]]
id = \"admin-keys\"
roles = [\"high\"]
ops = [\"init-token\"]
keys = {{ label = \"x\" }}

[[rule]]
id = \"too-high\"
roles = [\"low\"]
ops = [\"sign\"]
keys = {{ set = \"vault\" }}

[[rule]]
id = \"too-high-2\"
roles = [\"low\"]
ops = [\"verify\"]
keys = {{ classification = [\"Medium\", \"High\"] }}
"
    );
    let f = findings(&text);
    let unreachable: Vec<usize> = f
        .iter()
        .filter(|(k, _)| *k == FindingKind::Unreachable)
        .map(|(_, l)| *l)
        .collect();
    assert_eq!(unreachable.len(), 5, "{f:?}");
}

#[test]
fn wide_rules_on_high_keys_and_unused_names() {
    let text = r#"version = 1
[principals]
a = { user = "a" }
lonely = { user = "z" }
[roles]
r = { members = ["a"], clearance = "High" }
idle = { members = ["a"], clearance = "Low" }
[[keyset]]
name = "low"
label = "low-*"
classification = "Low"
[[keyset]]
name = "nothing"
label = "n-*"

[[rule]]
id = "all-on-low"
roles = ["r"]
ops = ["*"]
keys = { set = "low" }

[[rule]]
id = "all"
roles = ["r"]
ops = ["*"]
"#;
    let f = findings(text);
    assert!(f.contains(&(FindingKind::WideHigh, 22)), "{f:?}");
    assert!(!f.contains(&(FindingKind::WideHigh, 17)), "{f:?}");
    let unused: Vec<usize> = f
        .iter()
        .filter(|(k, _)| *k == FindingKind::Unused)
        .map(|(_, l)| *l)
        .collect();
    // principal lonely (4), role idle (7), keyset nothing (12).
    assert_eq!(unused, vec![4, 7, 12], "{f:?}");
}
