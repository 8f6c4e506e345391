//! Keywarden's forwarding overhead, measured against SoftHSM2 in one process.
//!
//! SoftHSM is loaded directly (path A, "direct") and through `libkeywarden.so`
//! (path B, "keywarden") in the same process, over the same token instance and the
//! same keys. Both paths run the same code with raw calls through their
//! `CK_FUNCTION_LIST`; only the table pointer differs. Timed rounds alternate in ABBA
//! order and the result per case is the median of the per-round ratio
//! `keywarden ops/s ÷ direct ops/s`. See benches/README.md for how to run it and for
//! the measured table.
//!
//! Modes:
//! - `overhead [--extra] [--aa] [FILTER...]`: the timed table (Markdown on stdout).
//!   `--extra` adds three cheap single-call cases; `--aa` replaces Keywarden by a second
//!   direct path (an A/A control that shows the noise floor); FILTER keeps the cases
//!   whose name contains one of the words.
//! - `overhead --callgrind CASE direct|keywarden N`: the harness of
//!   benches/callgrind.sh. Sets everything up, warms up, then performs N operations
//!   inside `kw_bench_measured`, the function callgrind's `--toggle-collect` names.
//!
//! Environment: `KEYWARDEN_BENCH_PROFILE=baseline` (measure with the baseline policy
//! in force instead of the transparent profile), `KEYWARDEN_BENCH_MANAGED_KEYS=N`
//! (with a profile: N managed keys in the metadata store, the benchmarked EC key one
//! of them, so the lifecycle checks are on the measured path), `KEYWARDEN_BENCH_AUDIT=required`
//! (the audit trail in `required` mode; default `buffered`), `KEYWARDEN_BENCH_QUICK=1` (smoke run: 6 short rounds),
//! `KEYWARDEN_BENCH_ROUNDS` (even, default 40), `KEYWARDEN_BENCH_ROUND_MS` (default 60),
//! `KEYWARDEN_MODULE` (default: `libkeywarden.so` next to `deps/` of this binary,
//! i.e. target/release/), `SOFTHSM_MODULE` (default the Debian path).
#![allow(non_snake_case)]

use std::ffi::c_void;
use std::mem::size_of;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use libloading::Library;
use pkcs11_sys::*;

#[path = "support/managed.rs"]
mod managed;

const DEFAULT_SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN_LABEL: &str = "bench";
const SO_PIN: &str = "123456";
const USER_PIN: &str = "1234";
/// DER encoding of the OID prime256v1 (secp256r1).
const P256_OID: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `CKA_ID` of the benchmarked EC key pair: with `KEYWARDEN_BENCH_MANAGED_KEYS` it
/// is a managed key's active version.
const BENCH_EC_ID: &[u8] = b"bench-ec-id";

/// One call through a function list. Every call in this file goes through here, so
/// the client-side cost is the same for both paths.
macro_rules! p11 {
    ($fl:expr, $f:ident ( $( $a:expr ),* $(,)? )) => {
        match $fl.$f {
            // SAFETY: the pointer comes from the module's own function list; every
            // argument points to live local storage of the right type and length.
            Some(f) => unsafe { f($( $a ),*) },
            None => CKR_FUNCTION_NOT_SUPPORTED,
        }
    };
}

#[inline(always)]
fn ok(rv: CK_RV, what: &'static str) {
    if rv != CKR_OK {
        failed(rv, what);
    }
}

#[cold]
#[inline(never)]
fn failed(rv: CK_RV, what: &'static str) -> ! {
    panic!("{what} returned {rv:#x}");
}

fn ulong(n: usize) -> CK_ULONG {
    CK_ULONG::try_from(n).expect("length fits CK_ULONG")
}

#[path = "support/setup.rs"]
mod setup;
use setup::*;

#[path = "support/cases.rs"]
mod cases;
use cases::*;

// ---------------------------------------------------------------------------------
// The timed table
// ---------------------------------------------------------------------------------

struct Settings {
    rounds: usize,
    round: Duration,
}

impl Settings {
    fn from_env() -> Settings {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let quick = std::env::var("KEYWARDEN_BENCH_QUICK").is_ok_and(|v| v != "0");
        let (rounds, ms) = if quick { (6, 15) } else { (40, 60) };
        let rounds = var("KEYWARDEN_BENCH_ROUNDS").map_or(rounds, |r| r as usize);
        Settings {
            // ABBA needs pairs of rounds.
            rounds: rounds.max(2).next_multiple_of(2),
            round: Duration::from_millis(var("KEYWARDEN_BENCH_ROUND_MS").unwrap_or(ms)),
        }
    }
}

struct Row {
    case: Case,
    rounds: usize,
    ops_per_round: usize,
    direct: f64,
    keywarden: f64,
    ratio: f64,
    ci_lo: f64,
    ci_hi: f64,
    /// Median of (1/rate_keywarden - 1/rate_direct) per call; single-threaded only.
    extra_ns_per_call: Option<f64>,
}

fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// The distribution-free 95 % confidence interval of the median of `values`: the
/// order statistics x(k) and x(n+1-k) for the largest k with P(Bin(n, ½) < k) ≤ 2.5 %.
fn median_ci(values: &[f64]) -> (f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    // Invariant: cdf = P(X <= k - 1) and pmf = P(X = k) for X ~ Bin(n, ½).
    let (mut cdf, mut pmf, mut k) = (0.0f64, 0.5f64.powi(n as i32), 0usize);
    while k < n / 2 && cdf + pmf <= 0.025 {
        cdf += pmf;
        pmf *= (n - k) as f64 / (k + 1) as f64;
        k += 1;
    }
    // 1-based x(k) and x(n+1-k); k = 0 (fewer than 6 values) gives the whole range.
    (v[k.saturating_sub(1)], v[(n - k).min(n - 1)])
}

fn measure(case: Case, setup: &Setup, settings: &Settings) -> Row {
    let (a, b, keys) = (&setup.paths[0], &setup.paths[1], &setup.keys);
    let span = settings.round;

    // Calibrate on the direct path: double n until one run takes ≥ 1/4 of a round.
    let mut n = 1usize;
    if case.threads() == 1 {
        let rate = loop {
            let (done, d) = timed(case, a, keys, n, span);
            if d >= span / 4 || n >= 1 << 24 {
                break done as f64 / d.as_secs_f64();
            }
            n *= 2;
        };
        n = ((rate * span.as_secs_f64()) as usize).max(1);
    }
    // Warm both paths once at full size.
    timed(case, a, keys, n, span);
    timed(case, b, keys, n, span);

    let (mut ra, mut rb, mut ratios, mut extra) = (vec![], vec![], vec![], vec![]);
    let mut ops = 0;
    let mut round = 0;
    loop {
        // ABBA: even rounds A then B, odd rounds B then A.
        let ((oa, da), (ob, db)) = if round % 2 == 0 {
            let x = timed(case, a, keys, n, span);
            (x, timed(case, b, keys, n, span))
        } else {
            let y = timed(case, b, keys, n, span);
            (timed(case, a, keys, n, span), y)
        };
        round += 1;
        ops = ops.max(oa);
        let (rate_a, rate_b) = (oa as f64 / da.as_secs_f64(), ob as f64 / db.as_secs_f64());
        ra.push(rate_a);
        rb.push(rate_b);
        ratios.push(rate_b / rate_a);
        extra.push((1.0 / rate_b - 1.0 / rate_a) * 1e9 / case.calls_per_op() as f64);
        // Stop after the base number of rounds once the median is known to ±1 %, or
        // at three times the base number; always after a whole ABBA pair.
        if round % 2 == 0 && round >= settings.rounds {
            let (lo, hi) = median_ci(&ratios);
            if hi - lo <= 0.02 || round >= 3 * settings.rounds {
                break;
            }
        }
    }
    let (ci_lo, ci_hi) = median_ci(&ratios);
    Row {
        case,
        rounds: round,
        ops_per_round: ops,
        direct: quantile(&ra, 0.5),
        keywarden: quantile(&rb, 0.5),
        ratio: quantile(&ratios, 0.5),
        ci_lo,
        ci_hi,
        extra_ns_per_call: (case.threads() == 1).then(|| quantile(&extra, 0.5)),
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

fn table(args: &[String]) {
    let extra = args.iter().any(|a| a == "--extra");
    let aa = args.iter().any(|a| a == "--aa");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let cases: Vec<Case> = Case::all()
        .filter(|c| extra || MAIN_CASES.contains(c))
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name().contains(f.as_str())))
        .collect();
    let settings = Settings::from_env();
    let b = if aa { "direct-2" } else { "keywarden" };
    let setup = Setup::new(cases.contains(&Case::RsaSign), &["direct", b]);

    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(repo_root())
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    // The commit, "-dirty" when what goes into libkeywarden.so differs from it.
    let mut commit = git(&["rev-parse", "--short", "HEAD"]);
    if !git(&[
        "status",
        "--porcelain",
        "--",
        "src",
        "Cargo.toml",
        "Cargo.lock",
    ])
    .is_empty()
    {
        commit.push_str("-dirty");
    }
    let v = setup.softhsm_version;
    println!(
        "Keywarden {commit} overhead ({b} vs direct), {date}, {}, SoftHSM {}.{}. Per case: ABBA \
         rounds of ~{} ms per path ({} rounds, up to {} while the 95 % CI of the median \
         is wider than 0.02), median of the per-round ratios {b}/direct.\n",
        machine(),
        v.major,
        v.minor,
        settings.round.as_millis(),
        settings.rounds,
        3 * settings.rounds,
    );
    println!(
        "| case | one op | direct ops/s | {b} ops/s | ratio (median) | 95 % CI | rounds | extra ns/call | target | met |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|--:|:-:|");
    let started = Instant::now();
    for case in cases {
        let row = measure(case, &setup, &settings);
        let (target, met) = match case.target() {
            Some(t) => (
                format!("≥ {t:.2}"),
                if row.ratio >= t { "yes" } else { "**no**" },
            ),
            None => ("–".into(), "–"),
        };
        let extra = row
            .extra_ns_per_call
            .map_or_else(|| "–".to_string(), |e| format!("{e:.0}"));
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.3} | {:.3}–{:.3} | {} | {extra} | {target} | {met} |",
            row.case.name(),
            row.case.calls(),
            row.direct,
            row.keywarden,
            row.ratio,
            row.ci_lo,
            row.ci_hi,
            row.rounds,
        );
        eprintln!(
            "  {}: {} ops per round, {:.1} s so far",
            row.case.name(),
            row.ops_per_round,
            started.elapsed().as_secs_f64()
        );
    }
    setup.finish();
}

// ---------------------------------------------------------------------------------
// The callgrind harness
// ---------------------------------------------------------------------------------

struct Measured<'a> {
    case: Case,
    fl: &'a CK_FUNCTION_LIST,
    session: CK_SESSION_HANDLE,
    keys: &'a Keys,
    n: usize,
}

/// The measured loop: callgrind runs with `--collect-atstart=no
/// --toggle-collect=kw_bench_measured`, so only what happens in here is counted.
#[no_mangle]
#[inline(never)]
fn kw_bench_measured(m: &Measured<'_>) {
    run_ops(m.case, m.fl, m.session, m.keys, m.n);
}

fn callgrind(args: &[String]) {
    let usage = "usage: overhead --callgrind CASE direct|keywarden N";
    let case = args
        .first()
        .and_then(|c| Case::from_name(c))
        .unwrap_or_else(|| panic!("{usage}"));
    assert_eq!(case.threads(), 1, "{} is not a callgrind case", case.name());
    let n: usize = args.get(2).and_then(|n| n.parse().ok()).expect(usage);
    let name = match args.get(1).map(String::as_str) {
        Some("direct") => "direct",
        Some("keywarden") => "keywarden",
        _ => panic!("{usage}"),
    };
    // Only the measured path's sessions: both runs then get the same session handles
    // (SoftHSM's handle lookup costs a few instructions more for larger handles).
    let setup = Setup::new(case == Case::RsaSign, &[name]);
    let path = &setup.paths[0];
    // Warm-up outside the measured function: lazy binding, first-use allocations.
    run_ops(
        case,
        path.fl,
        path.main,
        &setup.keys,
        (n / 10).clamp(2, 100),
    );
    let m = Measured {
        case,
        fl: path.fl,
        session: path.main,
        keys: &setup.keys,
        n,
    };
    kw_bench_measured(std::hint::black_box(&m));
    println!(
        "case={} path={} n={n} calls_per_op={}",
        case.name(),
        path.name,
        case.calls_per_op()
    );
    setup.finish();
}

fn main() {
    // cargo bench passes `--bench`; drop it and anything cargo's harness would take.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--callgrind") {
        callgrind(&args[1..]);
    } else if args.iter().any(|a| a == "--list") {
        for case in Case::all() {
            println!("{} ({})", case.name(), case.calls());
        }
    } else {
        table(&args);
    }
}
