//! `[[cryptoperiod]]`: the originator- and recipient-usage periods of keys
//! selected by type, label or `CKA_ID`, and what to do when the originator-usage
//! period ends. The lifecycle engine (`crate::lifecycle`) interprets them; here they
//! are only parsed, checked and looked up.

use std::ops::Range;

use toml::Spanned;

use super::compile::Policy;
use super::format::RawCryptoperiod;
use super::matchers::KeySel;
use super::model::KeyFacts;
use super::parse::Cx;
use crate::error::Result;

/// What `keywarden keys rotate --due` (and the gateway, later) does with a version
/// whose originator-usage period has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WhenDue {
    /// Report it (`keys list --due`, doctor), change nothing.
    Warn,
    /// Create the next version and deactivate this one.
    Rotate,
    /// Deactivate it without a successor (applications must move on).
    Deactivate,
}

impl WhenDue {
    /// The spelling in policy files and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            WhenDue::Warn => "warn",
            WhenDue::Rotate => "rotate",
            WhenDue::Deactivate => "deactivate",
        }
    }
}

/// What enforce mode lets applications do with a key the metadata store does not
/// manage (created elsewhere, never adopted): `[settings] unmanaged_keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UnmanagedKeys {
    /// Policy rules alone decide (the default: a token's existing keys keep working).
    #[default]
    Allow,
    /// Only the processing side (verify, decrypt, unwrap), as for a deactivated
    /// version: data protected before keys were brought under management stays
    /// readable, nothing new is protected with an unmanaged key.
    Processing,
    /// No key-using operation at all until `keywarden keys adopt`.
    Deny,
}

impl UnmanagedKeys {
    /// The spelling in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            UnmanagedKeys::Allow => "allow",
            UnmanagedKeys::Processing => "processing",
            UnmanagedKeys::Deny => "deny",
        }
    }

    /// Parses the policy file's spelling.
    pub fn from_name(name: &str) -> Option<UnmanagedKeys> {
        [
            UnmanagedKeys::Allow,
            UnmanagedKeys::Processing,
            UnmanagedKeys::Deny,
        ]
        .into_iter()
        .find(|u| u.as_str() == name)
    }
}

/// A compiled `[[cryptoperiod]]`.
#[derive(Debug, Clone)]
pub struct Cryptoperiod {
    /// Its name (or `line N`).
    pub name: String,
    /// Line in the policy file.
    pub line: usize,
    /// Originator-usage period in seconds, counted from activation: how long the
    /// version may protect (sign, encrypt, wrap).
    pub originator_secs: i64,
    /// Recipient-usage period in seconds, counted from activation: how long the
    /// version may process (verify, decrypt, unwrap). Defaults to the originator one.
    pub recipient_secs: i64,
    /// What to do when the originator-usage period has ended.
    pub when_due: WhenDue,
    /// Compromised versions may still verify, for forensics.
    pub forensic_verify: bool,
    pub(crate) sel: KeySel,
}

impl Cryptoperiod {
    /// Whether this period applies to the key (every given selector matches).
    pub fn applies_to(&self, key: &KeyFacts) -> bool {
        self.sel.matches_facts(key)
    }
}

impl Policy {
    /// The first `[[cryptoperiod]]` (file order) that applies to the key.
    pub fn cryptoperiod_for(&self, key: &KeyFacts) -> Option<&Cryptoperiod> {
        self.cryptoperiods.iter().find(|c| c.applies_to(key))
    }

    /// `[settings] unmanaged_keys`.
    pub fn unmanaged_keys(&self) -> UnmanagedKeys {
        self.unmanaged_keys
    }

    /// Every `[[cryptoperiod]]`, in file order.
    pub fn cryptoperiods(&self) -> &[Cryptoperiod] {
        &self.cryptoperiods
    }

    /// Whether the key's keyset says it must be backed up before it may be destroyed.
    pub fn backup_required(&self, key: &KeyFacts) -> bool {
        self.keysets
            .iter()
            .any(|k| k.backup_required && k.sel.matches_facts(key))
    }
}

/// `"90d"`, `"12h"`, `"1y6w"`, `"3600s"` → seconds. Units: `s`, `m` (minutes),
/// `h`, `d`, `w`, `y` (365 days: cryptoperiods are policy, not calendar arithmetic).
/// `None` for anything else, zero included (a zero period would make every key due).
pub fn parse_period(text: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut digits = String::new();
    let mut any = false;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            'y' => 365 * 86_400,
            ' ' if digits.is_empty() => continue,
            _ => return None,
        };
        let n: i64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
        any = true;
    }
    (any && digits.is_empty() && total > 0).then_some(total)
}

pub(crate) fn compile(cx: &Cx<'_>, raw: &[Spanned<RawCryptoperiod>]) -> Result<Vec<Cryptoperiod>> {
    raw.iter()
        .map(|c| compile_one(cx, c.get_ref(), &c.span()))
        .collect()
}

fn compile_one(cx: &Cx<'_>, c: &RawCryptoperiod, sp: &Range<usize>) -> Result<Cryptoperiod> {
    let line = cx.line(sp);
    let period = |what: &str, text: &str| {
        parse_period(text).ok_or_else(|| {
            cx.err(
                sp,
                format!("cryptoperiod: bad {what} period {text:?} (expected e.g. \"90d\", \"12h\", \"1y\")"),
            )
        })
    };
    let originator_secs = period("originator", &c.originator)?;
    let recipient_secs = match &c.recipient {
        None => originator_secs,
        Some(t) => period("recipient", t)?,
    };
    // SP 800-57 Part 1 §5.3.4: the recipient-usage period never ends before the
    // originator-usage period (data protected on the last day must be processable).
    if recipient_secs < originator_secs {
        return Err(cx.err(
            sp,
            "cryptoperiod: the recipient period must be at least the originator period",
        ));
    }
    let when_due = match c.when_due.as_deref() {
        None | Some("warn") => WhenDue::Warn,
        Some("rotate") => WhenDue::Rotate,
        Some("deactivate") => WhenDue::Deactivate,
        Some(other) => {
            return Err(cx.err(
                sp,
                format!(
                    "cryptoperiod: unknown when_due {other:?} (expected \"warn\", \"rotate\" or \"deactivate\")"
                ),
            ))
        }
    };
    Ok(Cryptoperiod {
        name: c.name.clone().unwrap_or_else(|| format!("line {line}")),
        line,
        originator_secs,
        recipient_secs,
        when_due,
        forensic_verify: c.forensic_verify.unwrap_or(false),
        sel: cx.key_facts_sel(&c.label, &c.id, &None, &c.key_type, sp)?,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::policy::SystemClock;

    fn compile(text: &str) -> Result<Policy> {
        Policy::compile(text, "test.toml", Arc::new(SystemClock))
    }

    #[test]
    fn periods_parse() {
        assert_eq!(parse_period("90d"), Some(90 * 86_400));
        assert_eq!(parse_period("12h"), Some(43_200));
        assert_eq!(parse_period("1y 6w"), Some(365 * 86_400 + 42 * 86_400));
        assert_eq!(parse_period("30s"), Some(30));
        assert_eq!(parse_period("5m"), Some(300));
        for bad in ["", "0d", "d", "90", "90x", "-1d", "9999999999999999999y"] {
            assert_eq!(parse_period(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn first_matching_cryptoperiod_applies() {
        let p = compile(
            r#"
version = 1
[[cryptoperiod]]
name = "tls"
label = "tls-*"
originator = "30d"
recipient = "60d"
when_due = "rotate"

[[cryptoperiod]]
name = "ec"
type = "EC"
originator = "1y"
forensic_verify = true
"#,
        )
        .unwrap();
        let tls = p.cryptoperiod_for(&KeyFacts::labelled("tls-web")).unwrap();
        assert_eq!(tls.name, "tls");
        assert_eq!(tls.line, 3);
        assert_eq!(tls.originator_secs, 30 * 86_400);
        assert_eq!(tls.recipient_secs, 60 * 86_400);
        assert_eq!(tls.when_due, WhenDue::Rotate);
        let ec = KeyFacts {
            key_type: Some(pkcs11_sys::CKK_EC),
            ..KeyFacts::labelled("other")
        };
        let c = p.cryptoperiod_for(&ec).unwrap();
        assert_eq!(
            (c.name.as_str(), c.when_due, c.forensic_verify),
            ("ec", WhenDue::Warn, true)
        );
        assert_eq!(c.recipient_secs, c.originator_secs);
        assert!(p.cryptoperiod_for(&KeyFacts::labelled("other")).is_none());
    }

    #[test]
    fn bad_cryptoperiods_are_refused_with_their_line() {
        for (text, needle) in [
            ("originator = \"soon\"", "bad originator period"),
            (
                "originator = \"90d\"\nrecipient = \"30d\"",
                "at least the originator",
            ),
            (
                "originator = \"90d\"\nwhen_due = \"panic\"",
                "unknown when_due",
            ),
            ("originator = \"90d\"\ntype = \"NOPE\"", "type"),
            ("recipient = \"90d\"", "originator"),
            ("originator = \"90d\"\ncolour = 1", "colour"),
        ] {
            let err = compile(&format!("version = 1\n[[cryptoperiod]]\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{text}: {err}");
            assert!(err.contains("test.toml:"), "{err}");
        }
    }

    #[test]
    fn backup_required_follows_the_keyset() {
        let p = compile(
            r#"
version = 1
[[keyset]]
name = "ca"
label = "ca-*"
backup_required = true
[[keyset]]
name = "rest"
label = "*"
"#,
        )
        .unwrap();
        assert!(p.backup_required(&KeyFacts::labelled("ca-root")));
        assert!(!p.backup_required(&KeyFacts::labelled("web")));
    }
}
