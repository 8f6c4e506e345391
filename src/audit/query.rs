//! Reading the trail back: filters for `audit tail`/`search`, and the export formats
//! (`jsonl`, `csv`, `cef`) plus the one-line `text` summary the CLI prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use super::error::{AuditError, AuditResult};
use super::record::{Decision, RecordView, Timestamp};
use super::trail::list_files;

/// Which records to show. Time range is `[from, to)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Not before.
    pub from: Option<Timestamp>,
    /// Before.
    pub to: Option<Timestamp>,
    /// Key label or `CKA_ID` (hex).
    pub key: Option<String>,
    /// OS user name, uid, or named identity.
    pub user: Option<String>,
    /// Only refusals.
    pub denied: bool,
    /// Only refusals and failures: operations the token answered with an error
    /// (`CKR_PIN_INCORRECT`, ...) and changes whose outcome was not success. A size
    /// query's `CKR_BUFFER_TOO_SMALL` is the §5.2 protocol, not a failure.
    pub failed: bool,
}

impl Filter {
    /// True when `r` passes every condition.
    pub fn matches(&self, r: &RecordView) -> bool {
        let time = r.time.as_deref().and_then(Timestamp::parse);
        let in_range = match (self.from, self.to, time) {
            (None, None, _) => true,
            (_, _, None) => false,
            (from, to, Some(t)) => from.is_none_or(|f| t >= f) && to.is_none_or(|u| t < u),
        };
        // A key's records: those that used it, and the one that created it.
        let key_ok = self.key.as_deref().is_none_or(|k| {
            let names = |label: &Option<String>, id: &Option<String>| {
                label.as_deref() == Some(k)
                    || id.as_deref().is_some_and(|id| id.eq_ignore_ascii_case(k))
            };
            names(&r.key_label, &r.key_id) || names(&r.new_key_label, &r.new_key_id)
        });
        let user_ok = self.user.as_deref().is_none_or(|u| {
            r.user.as_deref() == Some(u)
                || r.identity.as_deref() == Some(u)
                || r.uid.is_some_and(|id| id.to_string() == u)
        });
        let denied = r.decision == Some(Decision::Deny);
        in_range
            && key_ok
            && user_ok
            && (!self.denied || denied)
            && (!self.failed || denied || is_failure(r))
    }
}

/// An operation the token refused, or a change that did not succeed.
fn is_failure(r: &RecordView) -> bool {
    let rv_failed =
        r.rv.as_deref()
            .is_some_and(|rv| rv != "CKR_OK" && rv != "CKR_BUFFER_TOO_SMALL");
    let outcome_failed = r.outcome.as_deref() == Some("error");
    rv_failed || outcome_failed
}

/// Complete lines that are not records: readers skip them and say how many, and
/// `verify` names each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// How many.
    pub count: u64,
    /// The first one's file and 1-based line.
    pub first: Option<(PathBuf, usize)>,
}

impl Skipped {
    /// Counts one more at `file:line`.
    pub fn add(&mut self, file: &Path, line: usize) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some((file.to_path_buf(), line));
        }
    }

    /// The warning a reader prints, or `None` when nothing was skipped.
    pub fn warning(&self) -> Option<String> {
        let (file, line) = self.first.as_ref()?;
        Some(format!(
            "{} line(s) of the trail are not records and were skipped, the first at {}:{line} \
             (keywarden audit verify names each)",
            self.count,
            file.display()
        ))
    }
}

/// A record found by [`read_records`].
#[derive(Debug, Clone)]
pub struct Found {
    /// Its file.
    pub file: PathBuf,
    /// Its 1-based line.
    pub line: usize,
    /// The line as written.
    pub text: String,
    /// The line parsed.
    pub view: RecordView,
}

/// Calls `each` for every record matching `filter`, in chain order, until it returns
/// false. Files whose successor starts more than a minute before `from` are skipped
/// unread (the minute covers clock differences between writing processes). A torn
/// last line (a record being written) is left for the next read; complete lines that
/// are not records are skipped and counted in the answer (`verify` reports them).
pub fn read_records(
    dir: &Path,
    filter: &Filter,
    mut each: impl FnMut(Found) -> bool,
) -> AuditResult<Skipped> {
    let mut skipped = Skipped::default();
    let files = list_files(dir)?;
    for (i, path) in files.iter().enumerate() {
        if let (Some(from), Some(next)) = (filter.from, files.get(i + 1)) {
            let next_start = first_time(next);
            if next_start.is_some_and(|t| t.0 + Duration::from_secs(60) < from.0) {
                continue;
            }
        }
        let bytes =
            crate::fsguard::read_nofollow(path).map_err(|e| AuditError::io(path.display(), &e))?;
        for (n, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
            let Some(line) = line.strip_suffix(b"\n") else {
                break;
            };
            let Ok(view) = serde_json::from_slice::<RecordView>(line) else {
                skipped.add(path, n + 1);
                continue;
            };
            if filter.matches(&view) {
                let found = Found {
                    file: path.clone(),
                    line: n + 1,
                    text: String::from_utf8_lossy(line).into_owned(),
                    view,
                };
                if !each(found) {
                    return Ok(skipped);
                }
            }
        }
    }
    Ok(skipped)
}

fn first_time(path: &Path) -> Option<Timestamp> {
    use std::io::BufRead;
    let file = crate::fsguard::open_nofollow(path).ok()?;
    let mut line = String::new();
    std::io::BufReader::new(file).read_line(&mut line).ok()?;
    let v: RecordView = serde_json::from_str(&line).ok()?;
    Timestamp::parse(v.time.as_deref()?)
}

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

const CSV_COLUMNS: &[&str] = &[
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
fn csv_cell(v: &str) -> String {
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

fn cef_header(v: &str) -> String {
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
    let severity = match super::syslog::severity(r) {
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

/// Writes every record matching `filter` in `format`; returns how many, and the
/// lines that were not records.
pub fn export(
    dir: &Path,
    filter: &Filter,
    format: Format,
    out: &mut dyn Write,
) -> AuditResult<(u64, Skipped)> {
    let io = |e: std::io::Error| AuditError::io("output", &e);
    header(out, format).map_err(io)?;
    let mut count = 0;
    let mut failed = None;
    let skipped = read_records(dir, filter, |found| {
        match write_record(out, format, &found) {
            Ok(()) => {
                count += 1;
                true
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    match failed {
        Some(e) => Err(io(e)),
        None => Ok((count, skipped)),
    }
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
