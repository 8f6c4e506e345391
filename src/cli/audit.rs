//! `keywarden audit verify|tail|search|export`: the auditor's view of the trail.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::audit::{
    self, EcdsaVerifier, Filter, Format, Found, HmacSealer, SealKeys, Timestamp, SEAL_PUB_FILE,
};
use crate::config::Config;
use crate::error::{Error, Result};

/// Where the trail is.
#[derive(Debug, Args)]
pub(super) struct Source {
    /// Configuration file (default: $KEYWARDEN_CONF, else /etc/keywarden/keywarden.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// The audit directory, instead of the configuration's `audit.dir`.
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
}

/// Which records.
#[derive(Debug, Args)]
pub(super) struct Select {
    /// Only records about this key (label or CKA_ID in hex).
    #[arg(long)]
    key: Option<String>,
    /// Only records of this OS user (name or uid) or named identity.
    #[arg(long)]
    user: Option<String>,
    /// Only refusals by the policy or the lifecycle.
    #[arg(long)]
    denied: bool,
    /// Refusals and failures: also operations the token answered with an error
    /// (CKR_PIN_INCORRECT, ...) and changes that failed.
    #[arg(long)]
    failed: bool,
}

/// A time range `[from, to)`.
#[derive(Debug, Args)]
pub(super) struct Range {
    /// Start (RFC 3339, e.g. 2025-01-31T12:00:00Z, or a date: 2025-01-31).
    #[arg(long, value_parser = parse_time)]
    from: Option<Timestamp>,
    /// End, exclusive (same forms).
    #[arg(long, value_parser = parse_time)]
    to: Option<Timestamp>,
}

#[derive(Debug, Subcommand)]
pub(super) enum AuditCommand {
    /// Check the hash chain and the seals; name the first bad record.
    Verify {
        #[command(flatten)]
        range: Range,
        /// HMAC seal key file (default: the configuration's `audit.seal_key_file`).
        #[arg(long)]
        seal_key: Option<PathBuf>,
        /// Public key of the token's seal key (default: DIR/seal-key.pub when it
        /// exists). Best kept where the trail's writers cannot change it.
        #[arg(long)]
        seal_pub: Option<PathBuf>,
        /// The files before the first one were archived: a trail that does not
        /// start at seq 0 is then not reported as files missing.
        #[arg(long)]
        archived: bool,
        /// The off-host copy of the seals (the syslog lines or JSON records a SIEM
        /// collected): every seal in it must be in the trail, byte for byte.
        #[arg(long, value_name = "FILE")]
        against: Option<PathBuf>,
        /// One JSON object: the counts, and every problem, warning and note with
        /// its `kind` and `message` (docs/audit.md "Verify"). Same exit status.
        #[arg(long)]
        json: bool,
    },
    /// Create the audit seal key pair on the token and write DIR/seal-key.pub.
    InitSealKey {
        /// Label of the token that gets the key (and seals the trail).
        #[arg(long)]
        token: String,
        /// File holding the user PIN (first line, mode 0600). Default: the
        /// configuration's `backend.pin_file`, else standard input.
        #[arg(long)]
        pin_file: Option<PathBuf>,
        /// The key is already on the token: write its public half again.
        #[arg(long, conflicts_with = "rotate")]
        export_existing: bool,
        /// The key was lost (its private half is gone from the token): make a new
        /// one; the old DIR/seal-key.pub is kept as DIR/seal-key-<key_id>.pub.
        #[arg(long)]
        rotate: bool,
    },
    /// Show the last records, and with -f follow new ones until interrupted.
    Tail {
        /// Keep printing records as they are written (Ctrl-C to stop).
        #[arg(short, long)]
        follow: bool,
        /// How many of the last records to show first.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: usize,
        #[command(flatten)]
        select: Select,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// JSON Lines: the records as written (the same as --format jsonl).
        #[arg(long, conflicts_with = "format")]
        json: bool,
    },
    /// Print the records matching the filters.
    Search {
        #[command(flatten)]
        range: Range,
        #[command(flatten)]
        select: Select,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// JSON Lines: the records as written (the same as --format jsonl).
        #[arg(long, conflicts_with = "format")]
        json: bool,
    },
    /// Export a period for a SIEM or a spreadsheet.
    Export {
        /// jsonl (lines as written, chain intact), csv, cef, or text (one readable line per record).
        #[arg(long, value_enum)]
        format: Format,
        #[command(flatten)]
        range: Range,
        #[command(flatten)]
        select: Select,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

fn parse_time(s: &str) -> std::result::Result<Timestamp, String> {
    Timestamp::parse(s)
        .ok_or_else(|| format!("not a time: {s} (use 2025-01-31 or 2025-01-31T12:00:00Z)"))
}

pub(super) fn audit_err(e: audit::AuditError) -> Error {
    Error::from(e)
}

/// The audit directory and the configuration's `[audit]` section, if one was read.
fn locate(source: &Source) -> Result<(PathBuf, Option<crate::config::AuditSection>)> {
    if let Some(dir) = &source.dir {
        let section = source
            .config
            .as_ref()
            .map(|p| Config::load(p))
            .transpose()?
            .map(|c| c.audit);
        return Ok((dir.clone(), section));
    }
    let path = source.config.clone().unwrap_or_else(Config::path_from_env);
    let config = Config::load(&path)?;
    Ok((config.audit.dir.clone(), Some(config.audit)))
}

fn filter(range: Option<&Range>, select: &Select) -> Filter {
    Filter {
        from: range.and_then(|r| r.from),
        to: range.and_then(|r| r.to),
        key: select.key.clone(),
        user: select.user.clone(),
        denied: select.denied,
        failed: select.failed,
    }
}

/// The format asked for: `--json` is JSON Lines, the records as written.
fn format_of(format: Format, json: bool) -> Format {
    if json {
        Format::Jsonl
    } else {
        format
    }
}

/// Lines that are not records were skipped: warn, and fail the command (exit 1),
/// so a script never takes a damaged trail's answer for a whole one.
pub(super) fn skipped_exit(skipped: &audit::Skipped) -> ExitCode {
    match skipped.warning() {
        Some(w) => {
            eprintln!("keywarden: warning: {w}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}

pub(super) fn run(source: &Source, command: &AuditCommand) -> Result<ExitCode> {
    let (dir, section) = locate(source)?;
    match command {
        AuditCommand::Verify {
            range,
            seal_key,
            seal_pub,
            archived,
            against,
            json,
        } => super::audit_verify::verify(
            &dir,
            section.as_ref(),
            &super::audit_verify::VerifyArgs {
                from: range.from,
                to: range.to,
                seal_key: seal_key.clone(),
                seal_pub: seal_pub.clone(),
                archived: *archived,
                against: against.clone(),
                json: *json,
            },
        ),
        AuditCommand::InitSealKey {
            token,
            pin_file,
            export_existing,
            rotate,
        } => init_seal_key(
            source,
            &dir,
            token,
            pin_file.as_deref(),
            *export_existing,
            *rotate,
        ),
        AuditCommand::Search {
            range,
            select,
            format,
            json,
        } => {
            let out = std::io::stdout();
            let mut out = BufWriter::new(out.lock());
            let format = format_of(*format, *json);
            let skipped = write_all(&dir, &filter(Some(range), select), format, &mut out)?;
            Ok(skipped_exit(&skipped))
        }
        AuditCommand::Export {
            format,
            range,
            select,
            output,
        } => export(
            &dir,
            &filter(Some(range), select),
            *format,
            output.as_deref(),
        ),
        AuditCommand::Tail {
            follow,
            lines,
            select,
            format,
            json,
        } => {
            let format = format_of(*format, *json);
            super::audit_follow::tail(&dir, &filter(None, select), *lines, *follow, format)
        }
    }
}

/// `keywarden audit init-seal-key`: the seal key created (or its public half
/// exported again), and what the configuration needs to seal with it.
fn init_seal_key(
    source: &Source,
    dir: &Path,
    token: &str,
    pin_file: Option<&Path>,
    export_existing: bool,
    rotate: bool,
) -> Result<ExitCode> {
    let path = source.config.clone().unwrap_or_else(Config::path_from_env);
    let config = Config::load(&path)?;
    let (file, written) = super::audit_seal::init_seal_key(&super::audit_seal::SealKeyRequest {
        module: &config.backend.module,
        token,
        pin_file: pin_file.or(config.backend.pin_file.as_deref()),
        audit_dir: dir,
        sharing: config.audit.sharing()?,
        export_existing,
        rotate,
    })?;
    println!(
        "seal key on token {token:?}: {} key_id {}",
        file.alg, file.key_id
    );
    println!("public key written to {}", written.display());
    if config.audit.seal_token.as_deref() != Some(token) {
        println!("to seal with it, set in [audit]: seal_token = {:?}", token);
    }
    Ok(ExitCode::SUCCESS)
}

/// `keywarden audit export`: the records `f` selects, to `output` or stdout.
fn export(dir: &Path, f: &Filter, format: Format, output: Option<&Path>) -> Result<ExitCode> {
    let count = match output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| Error::from(audit::AuditError::io(path.display(), &e)))?;
            let mut out = BufWriter::new(file);
            let n = audit::export(dir, f, format, &mut out).map_err(audit_err)?;
            out.flush()
                .map_err(|e| Error::from(audit::AuditError::io(path.display(), &e)))?;
            n
        }
        None => {
            let out = std::io::stdout();
            let mut out = BufWriter::new(out.lock());
            let n = quiet_pipe(audit::export(dir, f, format, &mut out))?;
            let _ = out.flush();
            n
        }
    };
    eprintln!("exported {} records", count.0);
    Ok(skipped_exit(&count.1))
}

/// A verification key: its algorithm, its key_id and the file it was read from.
pub(super) struct SealKeyInfo {
    pub(super) alg: &'static str,
    pub(super) key_id: String,
    pub(super) file: PathBuf,
}

impl std::fmt::Display for SealKeyInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} key_id {} ({})",
            self.alg,
            self.key_id,
            self.file.display()
        )
    }
}

/// The verification keys: the HMAC key file, and the token key's public half
/// (`--seal-pub`, else DIR/seal-key.pub when present). Also one line per key
/// saying which key and from where, so the auditor can compare the key_id with
/// a copy kept elsewhere.
pub(super) fn seal_keys(
    dir: &Path,
    hmac: Option<PathBuf>,
    public: Option<PathBuf>,
) -> Result<(SealKeys, Vec<SealKeyInfo>)> {
    let mut keys = SealKeys::new();
    let mut described = Vec::new();
    if let Some(path) = hmac {
        let key = HmacSealer::from_file(&path).map_err(audit_err)?;
        described.push(SealKeyInfo {
            alg: audit::HMAC_ALG,
            key_id: key.key_id().to_string(),
            file: path.clone(),
        });
        keys.push(Box::new(key));
    }
    let default_pub = dir.join(SEAL_PUB_FILE);
    let publics = match public {
        Some(p) => vec![p],
        // The current key's, then those of keys `init-seal-key --rotate` retired.
        None => std::iter::once(default_pub)
            .filter(|p| p.exists())
            .chain(retired_pubs(dir))
            .collect(),
    };
    for path in publics {
        let key = EcdsaVerifier::from_file(&path).map_err(audit_err)?;
        described.push(SealKeyInfo {
            alg: audit::ECDSA_ALG,
            key_id: key.key_id().to_string(),
            file: path.clone(),
        });
        keys.push(Box::new(key));
    }
    Ok((keys, described))
}

/// `DIR/seal-key-<key_id>.pub`, sorted (none when the directory cannot be read).
fn retired_pubs(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(audit::RETIRED_SEAL_PUB_PREFIX) && n.ends_with(".pub")
            })
        })
        .collect();
    found.sort();
    found
}

/// A reader that went away (`| head`) ends the output quietly.
fn quiet_pipe(r: audit::AuditResult<(u64, audit::Skipped)>) -> Result<(u64, audit::Skipped)> {
    match r {
        Err(audit::AuditError::Io(msg)) if msg.starts_with("output:") => {
            Ok((0, Default::default()))
        }
        other => other.map_err(audit_err),
    }
}

fn write_all(
    dir: &Path,
    f: &Filter,
    format: Format,
    out: &mut dyn Write,
) -> Result<audit::Skipped> {
    if audit::header(out, format).is_err() {
        return Ok(Default::default());
    }
    let mut ok = true;
    let skipped = audit::read_records(dir, f, |found: Found| {
        ok = audit::write_record(out, format, &found).is_ok();
        ok
    })
    .map_err(audit_err)?;
    let _ = out.flush();
    Ok(skipped)
}

/// Set by SIGINT/SIGTERM; the follow loop checks it between polls.
pub(super) fn stop_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&flag))
            .map_err(|e| Error::Internal(format!("cannot handle signal {signal}: {e}")))?;
    }
    Ok(flag)
}

/// How often `tail -f` looks for new records.
pub(super) const POLL: Duration = Duration::from_millis(200);

pub(super) fn stopped(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed)
}
