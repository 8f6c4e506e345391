//! What `keywarden doctor` found, printed as it goes (text) or as one JSON object
//! at the end (`--json`): the facts of each section, and every problem, warning
//! and note with a machine-readable `check`, the human `message` and the `fix`.

use std::fmt::Display;
use std::process::ExitCode;

use serde::Serialize;
use serde_json::{Map, Value};

/// One finding.
#[derive(Debug, Serialize)]
pub(super) struct Finding {
    /// Which check found it (stable; listed in docs/doctor.md).
    pub(super) check: &'static str,
    /// What is wrong, in plain words.
    pub(super) message: String,
    /// The command or edit that fixes it, when there is one.
    pub(super) fix: Option<String>,
    /// The configuration line it is about (`config_parse` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) line: Option<usize>,
}

impl Finding {
    pub(super) fn new(check: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            check,
            message: message.into(),
            fix: None,
            line: None,
        }
    }

    pub(super) fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }
}

/// The report being written.
pub(super) struct Doctor {
    json: bool,
    facts: Map<String, Value>,
    problems: Vec<Finding>,
    warnings: Vec<Finding>,
    notes: Vec<Finding>,
}

impl Doctor {
    pub(super) fn new(json: bool) -> Doctor {
        Doctor {
            json,
            facts: Map::new(),
            problems: Vec::new(),
            warnings: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A line of the text report (nothing with `--json`: the facts carry it).
    pub(super) fn line(&self, text: impl Display) {
        if !self.json {
            println!("{text}");
        }
    }

    /// Sets `section.key` in the JSON report.
    pub(super) fn fact(&mut self, section: &str, key: &str, value: impl Into<Value>) {
        let entry = self
            .facts
            .entry(section)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = entry {
            map.insert(key.to_owned(), value.into());
        }
    }

    /// A problem: `doctor` exits 1.
    pub(super) fn problem(&mut self, f: Finding) {
        self.print("PROBLEM", &f);
        self.problems.push(f);
    }

    /// Something that will fail or mislead later, not a problem today.
    pub(super) fn warning(&mut self, f: Finding) {
        self.print("WARNING", &f);
        self.warnings.push(f);
    }

    /// A remark that needs no action now.
    pub(super) fn note(&mut self, f: Finding) {
        self.print("note", &f);
        self.notes.push(f);
    }

    fn print(&self, level: &str, f: &Finding) {
        if self.json {
            return;
        }
        println!("  {level}: {}", f.message);
        if let Some(fix) = &f.fix {
            println!("  fix: {fix}");
        }
    }

    /// Prints the JSON object (with `--json`); exit 1 when a problem was found.
    pub(super) fn finish(self) -> ExitCode {
        let healthy = self.problems.is_empty();
        if self.json {
            let mut out = self.facts;
            out.insert("healthy".into(), healthy.into());
            for (key, list) in [
                ("problems", self.problems),
                ("warnings", self.warnings),
                ("notes", self.notes),
            ] {
                out.insert(key.into(), serde_json::to_value(list).unwrap_or_default());
            }
            println!("{}", Value::Object(out));
        }
        if healthy {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}
