//! `doctor`'s answer to a configuration it cannot load: only a missing file is
//! what `keywarden init` fixes; a file that does not parse or validate is fixed
//! at the line the error is about.

use std::path::Path;

use super::report::{Doctor, Finding};
use crate::config::Config;
use crate::error::Error;

pub(super) fn load_failed(d: &mut Doctor, path: &Path, err: &Error) {
    let shown = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            d.problem(
                Finding::new("config_missing", format!("{shown} does not exist")).fix(
                    "run `keywarden init --dir DIR --backend PATH` and export \
                     KEYWARDEN_CONF=DIR/keywarden.toml (or give --config FILE)",
                ),
            );
            return;
        }
        Err(_) => {
            d.problem(
                Finding::new("config_unreadable", err.to_string())
                    .fix(format!("make {shown} readable by this user")),
            );
            return;
        }
    };
    let line = error_line(&text, err);
    let fix = match line {
        Some(n) => format!(
            "correct line {n} of {shown} (the README's configuration reference lists every key)"
        ),
        None => format!("correct {shown} (the README's configuration reference lists every key)"),
    };
    let mut f = Finding::new("config_parse", err.to_string()).fix(fix);
    f.line = line;
    d.problem(f);
}

/// The 1-based line the error is about: where TOML parsing stopped, else the
/// line of the `section.key` a validation error names.
fn error_line(text: &str, err: &Error) -> Option<usize> {
    if let Err(e) = toml::from_str::<Config>(text) {
        let start = e.span()?.start.min(text.len());
        return Some(text[..start].matches('\n').count() + 1);
    }
    // The path in front of the message may look like `name.ext`: the first
    // word that is a key of the file wins.
    let msg = err.to_string();
    let found = msg
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter_map(|w| w.split_once('.'))
        .find_map(|(section, key)| key_line(text, section, key));
    found
}

/// The line of `key = ...` in `[section]`.
fn key_line(text: &str, section: &str, key: &str) -> Option<usize> {
    let header = format!("[{section}]");
    let mut inside = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            inside = line == header;
        } else if inside
            && line
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_validation_error_points_at_its_key() {
        let text = "[backend]\nmodule = \"x\"\n[store]\ndir = \"rel\"\n";
        assert_eq!(super::key_line(text, "store", "dir"), Some(4));
        assert_eq!(super::key_line(text, "backend", "module"), Some(2));
        assert_eq!(super::key_line(text, "audit", "dir"), None);
    }
}
