//! `keywarden policy explain`: the decision on one request, and the rule that made it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use pkcs11_sys::*;

use super::policy::PolicySource;
use crate::abi::{class_name, key_type_name, mechanism_name};
use crate::config::{Config, PolicyMode};
use crate::error::{Error, Result};
use crate::policy::{
    names, Clock, Decision, KeyFacts, Level, Login, ManualClock, NamedIdentity, Op, Policy,
    Principal, Request, Subject, SystemClock,
};

/// The request to explain.
#[derive(Debug, Args)]
pub(super) struct ExplainArgs {
    #[command(flatten)]
    source: PolicySource,
    /// Unix user name of the caller.
    #[arg(long)]
    user: Option<String>,
    /// Unix uid of the caller.
    #[arg(long)]
    uid: Option<u32>,
    /// Group name (repeat for several).
    #[arg(long)]
    group: Vec<String>,
    /// Gid (repeat for several).
    #[arg(long)]
    gid: Vec<u32>,
    /// Executable path.
    #[arg(long)]
    exe: Option<String>,
    /// Host name.
    #[arg(long)]
    host: Option<String>,
    /// Login state of the session: public, user or so.
    #[arg(long, default_value = "user")]
    login: String,
    /// Named identity.
    #[arg(long)]
    identity: Option<String>,
    /// A role the credential store binds to --identity (repeat for several).
    #[arg(long = "identity-role")]
    identity_roles: Vec<String>,
    /// Key label.
    #[arg(long)]
    key: Option<String>,
    /// Key object class (private-key, public-key, secret-key, ...; default by operation).
    #[arg(long)]
    key_class: Option<String>,
    /// Key type (EC, RSA, AES, ...).
    #[arg(long)]
    key_type: Option<String>,
    /// CKA_ID, hex.
    #[arg(long)]
    key_id: Option<String>,
    /// Classification recorded for the key by the store.
    #[arg(long)]
    classification: Option<String>,
    /// Key size in bits (creation operations).
    #[arg(long)]
    bits: Option<u32>,
    /// Curve (creation operations), e.g. P-256.
    #[arg(long)]
    curve: Option<String>,
    /// Operation (docs/policy.md "Operations and refusal codes"; `import` is `create`).
    #[arg(long, value_parser = operations())]
    op: String,
    /// Mechanism, e.g. CKM_ECDSA.
    #[arg(long)]
    mech: Option<String>,
    /// Decide at this time (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<String>,
    /// Print the decision as one JSON object (fields: docs/policy.md "CLI").
    #[arg(long)]
    json: bool,
}

/// Exit codes, as `grep` and `diff` use them: the request is allowed, refused, or
/// could not be decided (bad input; clap's own usage errors exit 2 too).
const EXIT_DENY: u8 = 1;
const EXIT_INPUT: u8 = 2;

/// The operation names `--op` takes: clap lists them in `--help` and answers an
/// unknown one with "did you mean".
fn operations() -> clap::builder::PossibleValuesParser {
    let mut names: Vec<&'static str> = Op::ALL.iter().map(|op| op.name()).collect();
    names.push("import");
    clap::builder::PossibleValuesParser::new(names)
}

fn bad(msg: String) -> Error {
    Error::Config(msg)
}

/// The policy file `src` names, else the one the configuration enforces.
pub(super) fn policy_file(src: &PolicySource) -> Result<PathBuf> {
    if let Some(p) = &src.policy {
        return Ok(p.clone());
    }
    let path = src.config.clone().unwrap_or_else(Config::path_from_env);
    match Config::load(&path)?.policy.mode {
        PolicyMode::Enforce { file } => Ok(file),
        PolicyMode::Transparent => Err(bad(format!(
            "{} is in transparent mode (everything is allowed); pass --policy FILE",
            path.display()
        ))),
    }
}

/// The class a key is assumed to have for an operation when --key-class is not given.
fn default_class(op: Op) -> CK_OBJECT_CLASS {
    match op {
        Op::Verify | Op::Encrypt | Op::Wrap => CKO_PUBLIC_KEY,
        Op::DigestWithKey => CKO_SECRET_KEY,
        _ => CKO_PRIVATE_KEY,
    }
}

/// Decides and prints; any failure to decide is an input error (exit 2), never
/// confused with a refusal (exit 1).
pub(super) fn run(a: &ExplainArgs) -> Result<ExitCode> {
    match explain(a) {
        Ok(e) => {
            if a.json {
                println!("{}", e.json());
            } else {
                e.print();
            }
            Ok(ExitCode::from(if e.allowed { 0 } else { EXIT_DENY }))
        }
        Err(e) => {
            eprintln!(
                "keywarden: policy explain: {}",
                e.to_string().trim_start_matches("configuration: ")
            );
            Ok(ExitCode::from(EXIT_INPUT))
        }
    }
}

/// One explained decision, ready to print as text or JSON.
struct Explained {
    allowed: bool,
    rule: String,
    /// The policy file, line and description of `rule`, when it is a file rule.
    rule_at: Option<(PathBuf, usize, Option<String>)>,
    reason: String,
    rv: CK_RV,
    caller: String,
    login: Login,
    roles: Vec<String>,
    key: Option<String>,
    /// Whether `C_FindObjects` shows the key (use operations only).
    visible: Option<bool>,
    time: String,
    mechanism: Option<CK_MECHANISM_TYPE>,
}

impl Explained {
    fn print(&self) {
        println!("decision: {}", if self.allowed { "ALLOW" } else { "DENY" });
        match &self.rule_at {
            Some((file, line, desc)) => println!(
                "rule:     {} ({}:{line}{})",
                self.rule,
                file.display(),
                desc.as_ref().map_or(String::new(), |d| format!(": {d}"))
            ),
            None => println!("rule:     {}", self.rule),
        }
        println!("reason:   {}", self.reason);
        println!("code:     {}", crate::abi::rv_name(self.rv));
        println!(
            "caller:   {}login {}; roles: {}",
            self.caller,
            self.login.name(),
            if self.roles.is_empty() {
                "none".into()
            } else {
                self.roles.join(", ")
            }
        );
        if let Some(k) = &self.key {
            println!("key:      {k}");
        }
        if let Some(seen) = self.visible {
            println!(
                "visible:  {} (C_FindObjects)",
                if seen { "yes" } else { "no" }
            );
        }
        println!(
            "time:     {} (policy local time){}",
            self.time,
            self.mechanism.map_or(String::new(), |m| format!(
                "; mechanism {}",
                mechanism_name(m)
            ))
        );
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "decision": if self.allowed { "allow" } else { "deny" },
            "rule": self.rule,
            "rule_file": self.rule_at.as_ref().map(|(f, _, _)| f.display().to_string()),
            "rule_line": self.rule_at.as_ref().map(|(_, l, _)| l),
            "rule_description": self.rule_at.as_ref().and_then(|(_, _, d)| d.clone()),
            "reason": self.reason,
            "code": crate::abi::rv_name(self.rv),
            "caller": self.caller.trim_end_matches(", "),
            "login": self.login.name(),
            "roles": self.roles,
            "key": self.key,
            "visible": self.visible,
            "time": self.time,
            "mechanism": self.mechanism.map(|m| mechanism_name(m).into_owned()),
        })
    }
}

fn explain(a: &ExplainArgs) -> Result<Explained> {
    let file = policy_file(&a.source)?;
    let op = Op::from_name(&a.op).ok_or_else(|| bad(format!("unknown operation {:?}", a.op)))?;
    let policy = Policy::load(&file, clock_at(a.at.as_deref())?)?;
    let login = Login::from_name(&a.login).ok_or_else(|| {
        bad(format!(
            "--login {:?}: expected public, user or so",
            a.login
        ))
    })?;
    let principal = principal_of(a, login);
    let key = if op.is_admin() {
        None
    } else {
        Some(key_facts(a, op)?)
    };
    let mechanism = a
        .mech
        .as_deref()
        .map(|m| names::mechanism(m).ok_or_else(|| bad(format!("unknown mechanism {m:?}"))))
        .transpose()?;
    let subject = policy.resolve(&principal);
    let (d, visible) = decision(&policy, &subject, op, key.as_ref(), mechanism);
    let rule = d.rule.to_string();
    let rule_at = policy
        .describe(&rule)
        .map(|(line, desc)| (file.clone(), line, desc.map(str::to_owned)));
    Ok(Explained {
        allowed: d.allow,
        rule,
        rule_at,
        reason: d.reason.into_owned(),
        rv: d.rv,
        caller: describe_principal(&principal),
        login,
        roles: subject
            .role_names(&policy)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        key: key.as_ref().map(|k| describe_key(&policy, k)),
        visible,
        time: local_time(&policy),
        mechanism,
    })
}

/// The clock `--at` names (RFC 3339), else the system's.
fn clock_at(at: Option<&str>) -> Result<Arc<dyn Clock>> {
    let Some(t) = at else {
        return Ok(Arc::new(SystemClock));
    };
    let when = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            bad(format!(
                "--at {t:?}: {e} (expected RFC 3339, e.g. 2024-01-01T10:00:00Z)"
            ))
        })?;
    Ok(Arc::new(ManualClock::at(when.unix_timestamp())))
}

/// The caller the arguments describe.
fn principal_of(a: &ExplainArgs, login: Login) -> Principal {
    Principal {
        uid: a.uid,
        user: a.user.clone(),
        gids: a.gid.clone(),
        groups: a.group.clone(),
        exe: a.exe.clone(),
        host: a.host.clone(),
        login,
        identity: a.identity.as_ref().map(|name| NamedIdentity {
            name: name.clone(),
            roles: a.identity_roles.clone(),
        }),
    }
}

/// The policy's decision, and for a use of an existing key whether the subject
/// may see it.
fn decision(
    policy: &Policy,
    subject: &Subject,
    op: Op,
    key: Option<&KeyFacts>,
    mechanism: Option<CK_MECHANISM_TYPE>,
) -> (Decision, Option<bool>) {
    let mut d = policy.decide(&Request {
        subject,
        op,
        key,
        mechanism,
    });
    let mut visible = None;
    if let Some(k) = key {
        if !op.is_creation() {
            visible = Some(policy.may_see(subject, k));
        } else if d.allow && (k.bits.is_some() || k.curve.is_some()) {
            // The new key's type and size are part of the one decision: a creation
            // the rules allow is still refused when its size is.
            d = policy.check_new_key(k);
        }
    }
    (d, visible)
}

/// The policy's local time, as time windows see it: "Mon 09:30".
fn local_time(policy: &Policy) -> String {
    let now = policy.local_now();
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    format!(
        "{} {:02}:{:02}",
        days.get(usize::from(now.weekday)).unwrap_or(&"?"),
        now.minute / 60,
        now.minute % 60
    )
}

fn key_facts(a: &ExplainArgs, op: Op) -> Result<KeyFacts> {
    let class = match &a.key_class {
        None => default_class(op),
        Some(c) => names::class(c).ok_or_else(|| bad(format!("unknown --key-class {c:?}")))?,
    };
    let key_type = a
        .key_type
        .as_deref()
        .map(|t| names::key_type(t).ok_or_else(|| bad(format!("unknown --key-type {t:?}"))))
        .transpose()?;
    let id = a
        .key_id
        .as_deref()
        .map(|h| names::hex_id(h).ok_or_else(|| bad(format!("--key-id {h:?}: expected hex"))))
        .transpose()?;
    let classification = a
        .classification
        .as_deref()
        .map(|c| Level::from_name(c).ok_or_else(|| bad(format!("unknown --classification {c:?}"))))
        .transpose()?;
    let curve = a
        .curve
        .as_deref()
        .map(|c| names::curve(c).ok_or_else(|| bad(format!("unknown --curve {c:?}"))))
        .transpose()?;
    Ok(KeyFacts {
        class: Some(class),
        key_type,
        label: a.key.clone(),
        id,
        classification,
        sensitive: None,
        extractable: None,
        bits: a.bits,
        curve,
    })
}

fn describe_principal(p: &Principal) -> String {
    let mut parts = Vec::new();
    if let Some(u) = &p.user {
        parts.push(format!("user {u}"));
    }
    if let Some(u) = p.uid {
        parts.push(format!("uid {u}"));
    }
    if !p.groups.is_empty() {
        parts.push(format!("groups {}", p.groups.join(",")));
    }
    if let Some(e) = &p.exe {
        parts.push(format!("exe {e}"));
    }
    if let Some(h) = &p.host {
        parts.push(format!("host {h}"));
    }
    if let Some(i) = &p.identity {
        parts.push(format!("identity {}", i.name));
    }
    parts.into_iter().map(|p| p + ", ").collect()
}

fn describe_key(policy: &Policy, k: &KeyFacts) -> String {
    let mut s = format!(
        "label {:?}, class {}",
        k.label.as_deref().unwrap_or(""),
        k.class.map_or("?".into(), |c| class_name(c).into_owned())
    );
    if let Some(t) = k.key_type {
        s += &format!(", type {}", key_type_name(t));
    }
    if let Some(ks) = policy.keyset_of(k) {
        s += &format!("; keyset {ks}");
        if let Some(o) = policy.owner_of(k) {
            s += &format!(" (owner {o})");
        }
    }
    s + &format!("; classification {}", policy.classification(k))
}
