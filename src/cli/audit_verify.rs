//! `keywarden audit verify`: what the configuration says the trail must show, the
//! keys to check it with, and the report.
//!
//! With sealing configured (`seal_key_file` or `seal_token`, or a key given on the
//! command line) verify expects the head (keyed, with the software key), a key for
//! every seal, the seals each writer's rule calls for and a trail starting at seq 0
//! (unless `--archived`/`--from`); a missing one is a problem (exit 1). Without
//! any seal key the trail is reported as unsealed: the chain is checked and the
//! exit status is 0, with a warning that completeness cannot be proven.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::audit::{self, Expect, OffHost, Options, Sealer, Timestamp, SEAL_PUB_FILE};
use crate::config::AuditSection;
use crate::error::Result;

use super::audit::{audit_err, seal_keys};

/// The options of `audit verify`.
#[derive(Debug)]
pub(super) struct VerifyArgs {
    pub(super) from: Option<Timestamp>,
    pub(super) to: Option<Timestamp>,
    pub(super) seal_key: Option<PathBuf>,
    pub(super) seal_pub: Option<PathBuf>,
    pub(super) archived: bool,
    pub(super) against: Option<PathBuf>,
    /// Print one JSON object instead of the text report.
    pub(super) json: bool,
}

pub(super) const UNSEALED: &str =
    "UNSEALED trail: no seal key is configured. The chain shows changed, removed \
    and reordered records, but not a consistent rewrite, nor records cut from the end together \
    with audit.head: this trail cannot prove that it is complete";

pub(super) const FORGEABLE: &str =
    "seals made by a key the audited process can read (the software key file) \
    or use (the token key, with the PIN it reads) do not stop that process's user from rewriting \
    and re-sealing the trail; only the off-host copy of the seals does: verify --against FILE";

pub(super) fn verify(
    dir: &Path,
    section: Option<&AuditSection>,
    args: &VerifyArgs,
) -> Result<ExitCode> {
    let key_file = args
        .seal_key
        .clone()
        .or_else(|| section.and_then(|s| s.seal_key_file.clone()));
    let token_sealed = section.is_some_and(|s| s.seal_token.is_some());
    let public_given = args.seal_pub.is_some() || dir.join(SEAL_PUB_FILE).exists();
    let (keys, described) = seal_keys(dir, key_file.clone(), args.seal_pub.clone())?;
    // A key configured, given or found (DIR/seal-key.pub) means the trail is sealed.
    let sealed = !keys.is_empty() || token_sealed;
    let missing_key = (token_sealed && !public_given).then(|| {
        format!(
            "seal_token is configured but {} is missing (give the public key with --seal-pub)",
            dir.join(SEAL_PUB_FILE).display()
        )
    });
    let expect = Expect {
        sealed,
        keyed_head: key_file.is_some() && !token_sealed,
        rule: section.map(|s| (s.seal_every_records.max(1), s.seal_every_secs)),
        archived: args.archived,
        missing_key,
    };
    let against = args
        .against
        .as_deref()
        .map(OffHost::read)
        .transpose()
        .map_err(audit_err)?;
    let mut report = audit::verify_with(
        dir,
        &Options {
            from: args.from,
            to: args.to,
            sealer: (!keys.is_empty()).then_some(&keys as &dyn Sealer),
            expect: Some(expect),
            against: against.as_ref(),
        },
    )
    .map_err(audit_err)?;
    if !sealed {
        report.warnings.push(UNSEALED.to_owned());
    } else if against.is_none() {
        report.warnings.push(FORGEABLE.to_owned());
    }
    if args.json {
        println!(
            "{}",
            super::audit_verify_json::report(dir, &described, &report)
        );
    } else {
        println!("trail: {}", dir.display());
        for key in described {
            println!("seal key: {key}");
        }
        println!("{report}");
    }
    Ok(if report.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
