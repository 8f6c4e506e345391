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

/// Recomputes every link from `from` on, seals' `head` fields included, as someone
/// rewriting the trail without the seal key would.
pub fn rechain(lines: &mut [String], from: usize) {
    for i in from.max(1)..lines.len() {
        let prev = keywarden::audit::Digest::of_line(lines[i - 1].as_bytes()).to_hex();
        for field in ["\"prev\":\"", "\"head\":\""] {
            if let Some(at) = lines[i].find(field) {
                let start = at + field.len();
                lines[i].replace_range(start..start + 64, &prev);
            }
        }
    }
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

/// Switches the Keywarden configuration `conf` to a `required` trail in `dir`
/// (from `old_dir`, where `keywarden init` put it).
pub fn required_trail_in(conf: &Path, old_dir: &Path, dir: &Path) {
    let text = std::fs::read_to_string(conf).unwrap();
    let text = text.replacen("# mode = \"buffered\"", "mode = \"required\"", 1);
    assert!(text.contains("mode = \"required\""), "{text}");
    let old = format!("\"{}\"", old_dir.display());
    assert!(text.contains(&old), "{text}");
    let text = text.replacen(&old, &format!("\"{}\"", dir.display()), 1);
    std::fs::write(conf, text).unwrap();
}

/// A size-limited tmpfs (a disk that fills up), unmounted when dropped.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn mount(size: &str) -> Option<(tempfile::TempDir, Tmpfs)> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
            return None;
        }
        let mount = Tmpfs(dir.path().to_owned());
        Some((dir, mount))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Copies the trail files and the head of `from` into `to` (created): the same
/// chain in another place.
pub fn copy_trail(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in files(from) {
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
    let head = keywarden::audit::HEAD_FILE;
    std::fs::copy(from.join(head), to.join(head)).unwrap();
}

/// Fills the file system with a filler file until a `write` of even one byte
/// fails, and checks that `statvfs` agrees (no block left); returns it. (Files
/// already there may still take bytes into their last, partly used page or
/// folio: that slack is theirs.)
pub fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    for size in [4096, 1] {
        loop {
            match f.write(&chunk[..size]) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    let st = rustix::fs::statvfs(dir).unwrap();
    assert_eq!((st.f_bavail, st.f_bfree), (0, 0), "the file system is full");
    filler
}
