//! `keywarden doctor`'s file checks: the store and trail directories and every file
//! in them, the PIN files and the software seal key, with the same rules the module
//! and the CLI refuse them by (`fsguard`), each problem with the command that
//! fixes it.

use std::path::Path;

use super::report::{Doctor, Finding};
use crate::config::Config;
use crate::fsguard::{FileError, GuardedDir, Kind, Sharing};

/// Reports one problem per unsafe file.
pub(super) fn check(d: &mut Doctor, config: &Config) {
    let sharing = |r: crate::Result<Sharing>, d: &mut Doctor| {
        r.unwrap_or_else(|e| {
            d.problem(Finding::new("file_group", e.to_string()));
            Sharing::default()
        })
    };
    let store_sharing = sharing(config.store.sharing(), d);
    let audit_sharing = sharing(config.audit.sharing(), d);
    d.line(format_args!(
        "files:    store {}, audit {}",
        describe(store_sharing),
        describe(audit_sharing)
    ));
    d.fact("files", "store", describe(store_sharing));
    d.fact("files", "audit", describe(audit_sharing));
    let mut store_files: Vec<(String, Kind)> = ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|s| (format!("{}{s}", crate::store::DB_FILE), Kind::Private))
        .collect();
    store_files.push((crate::store::STAMP_FILE.into(), Kind::Shared));
    store_files.push((crate::store::REVOKED_FILE.into(), Kind::Shared));
    check_dir(
        d,
        "store_files",
        &config.store.dir,
        store_sharing,
        &store_files,
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
    check_dir(
        d,
        "audit_files",
        &config.audit.dir,
        audit_sharing,
        &audit_files,
    );
    if let Some(key) = &config.audit.seal_key_file {
        check_secret(d, "seal_key_file", key, audit_sharing);
    }
    for pin in [&config.backend.pin_file, &config.backend.so_pin_file]
        .into_iter()
        .flatten()
    {
        check_secret(d, "pin_file", pin, Sharing::default());
    }
}

fn describe(s: Sharing) -> String {
    match s.gid {
        Some(g) => format!("shared with group {g} (2770/0660)"),
        None => "owner-only (0700/0600)".into(),
    }
}

/// The finding for an unsafe file, its fix apart.
fn finding(check: &'static str, e: FileError) -> Finding {
    match e {
        FileError::Unsafe { path, problem, fix } => {
            Finding::new(check, format!("{} {problem}", path.display())).fix(fix)
        }
        other => Finding::new(check, other.to_string()),
    }
}

/// The directory and each of `files` that exists.
fn check_dir(
    d: &mut Doctor,
    check: &'static str,
    dir: &Path,
    sharing: Sharing,
    files: &[(String, Kind)],
) {
    let guarded = match GuardedDir::open(dir, sharing) {
        Ok(g) => g,
        // Reported as "not a directory" by the caller's directory line.
        Err(FileError::Missing(_)) => return,
        Err(e) => return d.problem(finding(check, e)),
    };
    for (name, kind) in files {
        if let Err(e) = guarded.check(name, *kind) {
            d.problem(finding(check, e));
        }
    }
}

fn check_secret(d: &mut Doctor, check: &'static str, path: &Path, sharing: Sharing) {
    if let Err(e) = crate::fsguard::open_checked(path, Kind::Secret, sharing) {
        d.problem(finding(check, e));
    }
}
