//! The export formats of the trail's records (`jsonl`, `csv`, `cef`) and the
//! one-line `text` summary the CLI prints.

use std::io::Write;
use std::time::UNIX_EPOCH;

use super::Found;
use crate::audit::record::{Decision, RecordView, Timestamp};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The lines as written (chain intact).
    Jsonl,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// ArcSight Common Event Format, one event per line.
    Cef,
    /// One readable line per record.
    Text,
}

pub(super) const CSV_COLUMNS: &[&str] = &[
    "seq",
    "time",
    "host",
    "pid",
    "uid",
    "user",
    "exe",
    "kind",
    "function",
    "identity",
    "role",
    "slot",
    "token",
    "session",
    "mechanism",
    "key_label",
    "key_id",
    "key_version",
    "decision",
    "rule",
    "rv",
    "bytes_in",
    "bytes_out",
    "duration_us",
    "action",
    "what",
    "outcome",
    "detail",
    // Appended (later columns keep their positions): the key a creating call made.
    "new_key_label",
    "new_key_id",
    "new_key_version",
];

fn columns(r: &RecordView) -> Vec<String> {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let n = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_default();
    let decision = r.decision.map(|d| match d {
        Decision::Allow => "allow".to_owned(),
        Decision::Deny => "deny".to_owned(),
    });
    vec![
        n(r.seq),
        o(&r.time),
        o(&r.host),
        n(r.pid.map(u64::from)),
        n(r.uid.map(u64::from)),
        o(&r.user),
        o(&r.exe),
        o(&r.kind),
        o(&r.function),
        o(&r.identity),
        o(&r.role),
        n(r.slot),
        o(&r.token),
        n(r.session),
        o(&r.mechanism),
        o(&r.key_label),
        o(&r.key_id),
        n(r.key_version.map(u64::from)),
        o(&decision),
        o(&r.rule),
        o(&r.rv),
        n(r.bytes_in),
        n(r.bytes_out),
        n(r.duration_us),
        o(&r.action),
        o(&r.what),
        o(&r.outcome),
        o(&r.detail),
        o(&r.new_key_label),
        o(&r.new_key_id),
        n(r.new_key_version.map(u64::from)),
    ]
}

/// One CSV cell. Cells a spreadsheet would run as a formula (a key label is chosen
/// by whoever created the key) get a leading apostrophe.
pub(super) fn csv_cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) && v.parse::<f64>().is_err() {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

pub(super) fn cef_header(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn cef_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('=', "\\=")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

/// One record as a CEF line.
pub fn cef_line(r: &RecordView) -> String {
    let kind = r.kind.as_deref().unwrap_or("record");
    let class = r.function.as_deref().unwrap_or(kind);
    let name = match (r.function.as_deref(), r.decision, r.action.as_deref()) {
        (Some(f), Some(Decision::Deny), _) => format!("{f} denied"),
        (Some(f), _, _) => format!("{f} {}", r.rv.as_deref().unwrap_or("")),
        (None, _, Some(a)) => format!("{kind} {a}"),
        _ => kind.to_owned(),
    };
    let severity = match crate::audit::syslog::severity(r) {
        3 => 8,
        4 => 6,
        5 => 4,
        _ => 2,
    };
    let rt = r
        .time
        .as_deref()
        .and_then(Timestamp::parse)
        .and_then(|t| t.0.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis().to_string());
    let text = |v: &Option<String>| v.clone();
    let num = |v: Option<u64>| v.map(|x| x.to_string());
    let decision = r.decision.map(|d| {
        if d == Decision::Deny {
            "deny".to_owned()
        } else {
            "allow".to_owned()
        }
    });
    let mut fields: Vec<(&str, Option<String>)> = vec![
        ("rt", rt),
        ("externalId", num(r.seq)),
        ("dvchost", text(&r.host)),
        ("dvcpid", num(r.pid.map(u64::from))),
        ("suid", num(r.uid.map(u64::from))),
        ("suser", text(&r.user)),
        ("sproc", text(&r.exe)),
        ("duser", text(&r.identity)),
        ("spriv", text(&r.role)),
        ("act", decision.or_else(|| text(&r.action))),
        ("reason", text(&r.rule).or_else(|| text(&r.detail))),
        ("outcome", text(&r.rv).or_else(|| text(&r.outcome))),
    ];
    // CEF's custom fields, each with a label naming it, both only when it has a value.
    let custom = [
        ("cs1Label", "cs1", "mechanism", text(&r.mechanism)),
        ("cs2Label", "cs2", "keyLabel", text(&r.key_label)),
        ("cs3Label", "cs3", "keyId", text(&r.key_id)),
        ("cs4Label", "cs4", "tokenSerial", text(&r.token)),
        ("cs5Label", "cs5", "newKeyLabel", text(&r.new_key_label)),
        ("cs6Label", "cs6", "newKeyId", text(&r.new_key_id)),
        ("cn1Label", "cn1", "bytesIn", num(r.bytes_in)),
        ("cn2Label", "cn2", "bytesOut", num(r.bytes_out)),
        ("cn3Label", "cn3", "durationUs", num(r.duration_us)),
    ];
    for (label_key, key, label, value) in custom {
        fields.push((label_key, value.as_ref().map(|_| label.to_owned())));
        fields.push((key, value));
    }
    let ext: Vec<String> = fields
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", cef_value(&v))))
        .collect();
    format!(
        "CEF:0|Keywarden|keywarden|{}|{}|{}|{severity}|{}",
        cef_header(crate::VERSION),
        cef_header(class),
        cef_header(&name),
        ext.join(" ")
    )
}

/// What a CLI change acted on: ` key=L v2 active->deactivated`, ` target=T`.
fn change_subject(r: &RecordView) -> String {
    let mut out = String::new();
    if let Some(k) = r.key_label.as_ref().or(r.key_id.as_ref()) {
        out.push_str(&format!(" key={k}"));
    }
    if let Some(v) = r.key_version {
        out.push_str(&format!(" v{v}"));
    }
    match (&r.from_state, &r.to_state) {
        (Some(f), Some(t)) => out.push_str(&format!(" {f}->{t}")),
        (None, Some(t)) => out.push_str(&format!(" ->{t}")),
        _ => {}
    }
    if let Some(t) = &r.target {
        out.push_str(&format!(" target={t}"));
    }
    out
}

/// A key in a text line: `{prefix}LABEL v3 id=01ab`, each part only when known.
fn key_text(
    prefix: &str,
    label: &Option<String>,
    id: &Option<String>,
    version: Option<u32>,
) -> String {
    let mut out = String::new();
    if let Some(l) = label {
        out.push_str(&format!("{prefix}{l}"));
    }
    if let Some(v) = version {
        out.push_str(&format!(" v{v}"));
    }
    if let Some(id) = id.as_ref().filter(|id| !id.is_empty()) {
        out.push_str(&if out.is_empty() {
            format!("{prefix}{id}")
        } else {
            format!(" id={id}")
        });
    }
    out
}

/// One readable line.
pub fn text_line(r: &RecordView) -> String {
    let who = match (&r.identity, &r.user, r.uid) {
        (Some(i), _, _) => i.clone(),
        (None, Some(u), _) => u.clone(),
        (None, None, Some(uid)) => format!("uid {uid}"),
        _ => "?".into(),
    };
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let what = match r.kind.as_deref() {
        Some("op") => {
            let key = key_text(" key=", &r.key_label, &r.key_id, r.key_version);
            let created = key_text(" new=", &r.new_key_label, &r.new_key_id, r.new_key_version);
            let mech = r
                .mechanism
                .as_ref()
                .map(|m| format!(" {m}"))
                .unwrap_or_default();
            let decision = if r.decision == Some(Decision::Deny) {
                "DENIED"
            } else {
                "allowed"
            };
            let rule = r
                .rule
                .as_ref()
                .map(|x| format!(" rule={x}"))
                .unwrap_or_default();
            format!(
                "{} {decision}{rule} {}{key}{created}{mech} in={} out={} {}us",
                o(&r.function),
                o(&r.rv),
                r.bytes_in.unwrap_or(0),
                r.bytes_out.unwrap_or(0),
                r.duration_us.unwrap_or(0)
            )
        }
        Some(kind) => format!(
            "{kind} {}{}{}{}",
            o(&r.action.clone().or_else(|| r.what.clone())),
            change_subject(r),
            r.outcome
                .as_ref()
                .map(|x| format!(" {x}"))
                .unwrap_or_default(),
            r.detail
                .as_ref()
                .map(|x| format!(": {x}"))
                .unwrap_or_default()
        ),
        None => "?".into(),
    };
    format!(
        "{} #{} {who}@{} pid {} {what}",
        o(&r.time),
        r.seq.map_or_else(|| "?".into(), |s| s.to_string()),
        o(&r.host),
        r.pid.map_or_else(|| "?".into(), |p| p.to_string())
    )
}

/// Writes one found record in `format` (after [`header`]).
pub fn write_record(out: &mut dyn Write, format: Format, found: &Found) -> std::io::Result<()> {
    match format {
        Format::Jsonl => writeln!(out, "{}", found.text),
        Format::Csv => {
            let cells: Vec<String> = columns(&found.view).iter().map(|c| csv_cell(c)).collect();
            writeln!(out, "{}", cells.join(","))
        }
        Format::Cef => writeln!(out, "{}", cef_line(&found.view)),
        Format::Text => writeln!(out, "{}", text_line(&found.view)),
    }
}

/// The header a format needs before its first record.
pub fn header(out: &mut dyn Write, format: Format) -> std::io::Result<()> {
    match format {
        Format::Csv => writeln!(out, "{}", CSV_COLUMNS.join(",")),
        _ => Ok(()),
    }
}
