//! `keywarden audit verify --json`: the report as one JSON object, each problem,
//! warning and note with a stable `kind` beside its `message` (docs/audit.md
//! "Verify").

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::audit::{Location, Problem, Report};

use super::audit::SealKeyInfo;
use super::audit_verify::{FORGEABLE, UNSEALED};

pub(super) fn report(dir: &Path, keys: &[SealKeyInfo], r: &Report) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| json!({"alg": k.alg, "key_id": k.key_id, "file": k.file.display().to_string()}))
        .collect();
    let truncated = r.truncated_tail.as_ref().map(|(at, bytes)| {
        let mut v = location(at);
        v.insert("bytes".into(), (*bytes).into());
        Value::Object(v)
    });
    let finding = |kind: &str, message: &str| json!({"kind": kind, "message": message});
    let warnings: Vec<Value> = r
        .warnings
        .iter()
        .map(|w| finding(warning_kind(w), w))
        .collect();
    let notes: Vec<Value> = r.notes.iter().map(|n| finding(note_kind(n), n)).collect();
    json!({
        "trail": dir.display().to_string(),
        "intact": r.is_intact(),
        "seal_keys": keys,
        "files": r.files,
        "records": r.records,
        "first_seq": r.first_seq,
        "last_seq": r.last_seq,
        "seals_verified": r.seals_verified,
        "seals_unchecked": r.seals_unchecked,
        "last_sealed_seq": r.last_sealed_seq,
        "unsealed_tail": r.unsealed_tail,
        "chain": r.chain,
        "offhost_matched": r.offhost_matched,
        "truncated_tail": truncated,
        "problems": r.problem.iter().map(problem).collect::<Vec<_>>(),
        "warnings": warnings,
        "notes": notes,
    })
}

fn location(at: &Location) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("file".into(), at.file.display().to_string().into());
    m.insert("line".into(), at.line.into());
    m.insert("seq".into(), at.seq.into());
    m
}

/// `{kind, message}` and, where the problem has them, `file`/`line`/`seq` of the
/// record it names and the seqs it compares.
fn problem(p: &Problem) -> Value {
    let (kind, at, extra): (&str, Option<&Location>, Vec<(&str, Value)>) = match p {
        Problem::Unparsable(at) => ("unparsable", Some(at), vec![]),
        Problem::Altered(at) => ("altered", Some(at), vec![]),
        Problem::Missing(at, e) => ("removed", Some(at), vec![("expected_seq", (*e).into())]),
        Problem::Reordered(at, e) => ("reordered", Some(at), vec![("expected_seq", (*e).into())]),
        Problem::BadSeal(at, _) => ("bad_seal", Some(at), vec![]),
        Problem::TailMissing { head_seq, last_seq } => (
            "tail_missing",
            None,
            vec![
                ("head_seq", (*head_seq).into()),
                ("last_seq", (*last_seq).into()),
            ],
        ),
        Problem::HeadMissing(_) => ("head_missing", None, vec![]),
        Problem::HeadNotKeyed => ("head_not_keyed", None, vec![]),
        Problem::SealKeyMissing(_) => ("seal_key_missing", None, vec![]),
        Problem::SealMissing(at, _) => ("seal_missing", Some(at), vec![]),
        Problem::FilesMissing(seq) => ("files_missing", None, vec![("first_seq", (*seq).into())]),
        Problem::ChainMismatch { head, first } => (
            "chain_mismatch",
            None,
            vec![
                ("head_chain", head.as_str().into()),
                ("first_chain", first.as_str().into()),
            ],
        ),
        Problem::OffHost(_) => ("offhost_mismatch", None, vec![]),
    };
    let mut m = at.map(location).unwrap_or_default();
    m.insert("kind".into(), kind.into());
    m.insert("message".into(), p.to_string().into());
    for (k, v) in extra {
        m.insert(k.into(), v);
    }
    Value::Object(m)
}

fn warning_kind(w: &str) -> &'static str {
    if w == UNSEALED {
        "unsealed"
    } else if w == FORGEABLE {
        "forgeable_seals"
    } else {
        "other"
    }
}

/// The engine's notes by how they begin (docs/audit.md lists them).
fn note_kind(n: &str) -> &'static str {
    const KINDS: [(&str, &str); 5] = [
        ("unsealed tail:", "unsealed_tail"),
        ("seals by alg", "seals_unchecked"),
        ("the trail starts at seq", "archived_start"),
        ("no trail files in", "no_trail_files"),
        (crate::audit::HEAD_FILE, "head_missing"),
    ];
    KINDS
        .iter()
        .find(|(prefix, _)| n.starts_with(prefix))
        .map_or("other", |(_, kind)| kind)
}
