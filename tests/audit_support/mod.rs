//! Helpers shared by the audit tests: writing a trail, reading and editing its lines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use keywarden::audit::{AuditConfig, AuditLog, HmacSealer, Mode, OpEvent, Sealer};
use keywarden::functions::FunctionId;

pub const KEY: [u8; 32] = [0x42; 32];

pub fn sealer() -> Arc<dyn Sealer> {
    Arc::new(HmacSealer::new(KEY.to_vec()).unwrap())
}

/// A signing record numbered `i` (in its byte count), for easy recognition.
pub fn op(i: u64) -> OpEvent {
    let mut e = OpEvent::new(FunctionId::C_Sign, 0);
    e.session = Some(1);
    e.slot = Some(0);
    e.key_label = Some("k1".into());
    e.bytes_in = i;
    e
}

pub fn config(dir: &Path, mode: Mode) -> AuditConfig {
    let mut c = AuditConfig::new(dir);
    c.mode = mode;
    c
}

/// Writes `n` records (required mode), sealing every `seal_every` records.
pub fn write_trail(dir: &Path, n: u64, seal_every: u64) {
    let mut c = config(dir, Mode::Required);
    c.seal_every_records = seal_every;
    let log = AuditLog::open(c, Some(sealer())).unwrap();
    for i in 0..n {
        log.append(op(i)).unwrap();
    }
    log.shutdown().unwrap();
}

pub fn files(dir: &Path) -> Vec<PathBuf> {
    keywarden::audit::list_files(dir).unwrap()
}

pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

pub fn seq_of(line: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["seq"].as_u64().unwrap()
}

/// The `keywarden` binary next to the test executable.
pub fn keywarden_bin() -> PathBuf {
    let mut p = std::env::current_exe().unwrap();
    p.pop();
    if p.ends_with("deps") {
        p.pop();
    }
    p.join("keywarden")
}
