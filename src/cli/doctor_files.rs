//! `keywarden doctor`'s file checks: the store and trail directories and every file
//! in them, the PIN files and the software seal key, with the same rules the module
//! and the CLI refuse them by (`fsguard`), each problem with the command that
//! fixes it.

use std::path::Path;

use crate::config::Config;
use crate::fsguard::{FileError, GuardedDir, Kind, Sharing};

/// Prints one line per problem; `true` when there is none.
pub(super) fn check(config: &Config) -> bool {
    let mut healthy = true;
    let mut report = |what: &str, r: Result<(), String>| {
        if let Err(e) = r {
            println!("  PROBLEM ({what}): {e}");
            healthy = false;
        }
    };
    let sharing = |r: crate::Result<Sharing>, report: &mut dyn FnMut(&str, Result<(), String>)| {
        r.unwrap_or_else(|e| {
            report("group", Err(e.to_string()));
            Sharing::default()
        })
    };
    let store_sharing = sharing(config.store.sharing(), &mut report);
    let audit_sharing = sharing(config.audit.sharing(), &mut report);
    println!(
        "files:    store {}, audit {}",
        describe(store_sharing),
        describe(audit_sharing)
    );
    let mut store_files: Vec<(String, Kind)> = ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|s| (format!("{}{s}", crate::store::DB_FILE), Kind::Private))
        .collect();
    store_files.push((crate::store::STAMP_FILE.into(), Kind::Shared));
    store_files.push((crate::store::REVOKED_FILE.into(), Kind::Shared));
    report(
        "store",
        check_dir(&config.store.dir, store_sharing, &store_files),
    );
    let mut audit_files: Vec<(String, Kind)> = vec![
        (crate::audit::HEAD_FILE.into(), Kind::Shared),
        ("seal-key.pub".into(), Kind::Shared),
    ];
    if let Ok(files) = crate::audit::list_files(&config.audit.dir) {
        audit_files.extend(
            files.iter().filter_map(|p| {
                Some((p.file_name()?.to_string_lossy().into_owned(), Kind::Shared))
            }),
        );
    }
    report(
        "audit",
        check_dir(&config.audit.dir, audit_sharing, &audit_files),
    );
    if let Some(key) = &config.audit.seal_key_file {
        report("seal key", check_secret(key, audit_sharing));
    }
    for pin in [&config.backend.pin_file, &config.backend.so_pin_file]
        .into_iter()
        .flatten()
    {
        report("PIN file", check_secret(pin, Sharing::default()));
    }
    healthy
}

fn describe(s: Sharing) -> String {
    match s.gid {
        Some(g) => format!("shared with group {g} (2770/0660)"),
        None => "owner-only (0700/0600)".into(),
    }
}

/// The directory and each of `files` that exists; the first problem.
fn check_dir(dir: &Path, sharing: Sharing, files: &[(String, Kind)]) -> Result<(), String> {
    let guarded = match GuardedDir::open(dir, sharing) {
        Ok(d) => d,
        // Reported as "not a directory" by the caller's directory line.
        Err(FileError::Missing(_)) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    let mut problems = Vec::new();
    for (name, kind) in files {
        if let Err(e) = guarded.check(name, *kind) {
            problems.push(e.to_string());
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n  PROBLEM: "))
    }
}

fn check_secret(path: &Path, sharing: Sharing) -> Result<(), String> {
    crate::fsguard::open_checked(path, Kind::Secret, sharing)
        .map(drop)
        .map_err(|e| e.to_string())
}
