//! Records per second one process sustains into the audit trail.
//!
//! `cargo bench --bench audit_writer` — writes into a temporary directory (or
//! `KEYWARDEN_AUDIT_BENCH_DIR`, to measure a particular disk) and prints a Markdown
//! table: `buffered` (append + a final flush) and `required` (every append waits for
//! its fsync) from 1 and 4 threads. `KEYWARDEN_BENCH_QUICK=1` shortens the run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keywarden::audit::{AuditConfig, AuditLog, HmacSealer, Mode, OpEvent, Sealer};
use keywarden::functions::FunctionId;

fn event(i: u64) -> OpEvent {
    let mut e = OpEvent::new(FunctionId::C_Sign, 0).with_mechanism_type(pkcs11_sys::CKM_ECDSA);
    e.slot = Some(0);
    e.session = Some(i % 8);
    e.key_label = Some("bench-key".into());
    e.key_id = Some(vec![1, 2, 3, 4].into());
    e.bytes_in = 32;
    e.bytes_out = 64;
    e.duration_us = 180;
    e
}

/// Appends from `threads` threads for about `budget`; returns records/s.
fn run(mode: Mode, threads: u64, budget: Duration) -> f64 {
    let base = std::env::var_os("KEYWARDEN_AUDIT_BENCH_DIR").map(std::path::PathBuf::from);
    let dir = match &base {
        Some(b) => tempfile::tempdir_in(b),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    let mut config = AuditConfig::new(dir.path());
    config.mode = mode;
    let sealer: Arc<dyn Sealer> = Arc::new(HmacSealer::new(vec![7; 32]).expect("key"));
    let log = AuditLog::open(config, Some(sealer)).expect("open trail");
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let log = &log;
                s.spawn(move || {
                    let mut n = 0;
                    while start.elapsed() < budget {
                        for _ in 0..64 {
                            log.append(event(n)).expect("append");
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    log.flush().expect("flush");
    let elapsed = start.elapsed().as_secs_f64();
    log.shutdown().expect("shutdown");
    total as f64 / elapsed
}

fn main() {
    // `cargo bench` passes --bench; a filter argument is accepted and ignored.
    let quick = std::env::var_os("KEYWARDEN_BENCH_QUICK").is_some();
    let budget = Duration::from_millis(if quick { 300 } else { 3000 });
    println!("| mode | threads | records/s |");
    println!("|---|---:|---:|");
    for (mode, name) in [(Mode::Buffered, "buffered"), (Mode::Required, "required")] {
        for threads in [1, 4] {
            let rate = run(mode, threads, budget);
            println!("| {name} | {threads} | {rate:.0} |");
        }
    }
}
