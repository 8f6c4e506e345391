//! How `keywarden keys list` scales with the number of versions in the store:
//! `cargo bench --bench keys_list` (no token needed: listing reads only the store).
//!
//! Keys with 5 versions each (4 deactivated by rotation, 1 active) are written
//! through the store API up to 1 000, 10 000 and 100 000 versions; at each size the
//! bench times `Store::snapshot` in process (median of 5) and the whole CLI, as a
//! user runs it (`keys list`, `keys list --json`, `keys list --state compromised`;
//! median of 3 wall-clock runs of the built binary, output discarded). The store
//! lives on /dev/shm when there is one: writing 100 000 rotations with an fsync each
//! would time the disk, not the listing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keywarden::store::{KeyState, NewKey, NewVersion, OpenOptions, SqliteStore, Store};

const VERSIONS_PER_KEY: u32 = 5;
const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn cli(bin: &str, conf: &Path, args: &[&str]) -> Duration {
    let runs = (0..3)
        .map(|_| {
            let t = Instant::now();
            let status = Command::new(bin)
                .arg("keys")
                .args(args)
                .env("KEYWARDEN_CONF", conf)
                .stdout(Stdio::null())
                .status()
                .expect("run keywarden");
            assert!(status.success(), "keywarden keys {args:?}");
            t.elapsed()
        })
        .collect();
    median(runs)
}

fn add_keys(store: &SqliteStore, from: usize, to: usize) {
    for k in from..to {
        let key = store
            .create_key(
                &NewKey {
                    label: format!("bench-key-{k:06}"),
                    owner: Some("ops".into()),
                    classification: None,
                    rotation_rule: None,
                },
                1_700_000_000,
            )
            .expect("create key");
        let version = |v: u32| NewVersion {
            token_serial: "bench-serial".into(),
            cka_id: format!("{k:06}-{v}").into_bytes(),
            algorithm: "CKK_EC".into(),
            size_bits: None,
            curve: Some("P-256".into()),
        };
        let mut active = store
            .add_version(key.id, &version(1), KeyState::Active, 1_700_000_000)
            .expect("add version")
            .id;
        for v in 2..=VERSIONS_PER_KEY {
            let at = 1_700_000_000 + i64::from(v) * 86_400;
            active = store
                .rotate(key.id, Some(active), &version(v), None, at)
                .expect("rotate")
                .current
                .id;
        }
    }
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_keywarden");
    let base = if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm")
    } else {
        tempfile::tempdir()
    }
    .expect("temp dir");
    let dir = base.path();
    let init = Command::new(bin)
        .args(["init", "--dir"])
        .arg(dir)
        .args(["--backend", "/usr/lib/softhsm/libsofthsm2.so"])
        .stdout(Stdio::null())
        .status()
        .expect("keywarden init");
    assert!(init.success());
    let conf = dir.join("keywarden.toml");
    let store =
        SqliteStore::create(&dir.join("store"), &OpenOptions::default()).expect("open store");
    println!("keys list scaling ({VERSIONS_PER_KEY} versions per key; medians)");
    println!(
        "{:>9} {:>7} {:>12} {:>12} {:>12} {:>14} {:>10}",
        "versions", "keys", "snapshot", "list", "list --json", "list --state", "db size"
    );
    let mut keys = 0;
    for size in SIZES {
        let want = size / VERSIONS_PER_KEY as usize;
        let t = Instant::now();
        add_keys(&store, keys, want);
        let fill = t.elapsed();
        keys = want;
        let snap = median(
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    let s = store.snapshot().expect("snapshot");
                    assert_eq!(s.versions.len(), size);
                    t.elapsed()
                })
                .collect(),
        );
        let table = cli(bin, &conf, &["list"]);
        let json = cli(bin, &conf, &["list", "--json"]);
        let state = cli(bin, &conf, &["list", "--state", "compromised"]);
        let db = std::fs::metadata(dir.join("store").join("keywarden.db"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "{size:>9} {keys:>7} {:>10.1}ms {:>10.1}ms {:>10.1}ms {:>12.1}ms {:>8.1}MB   (filled in {:.1}s)",
            snap.as_secs_f64() * 1e3,
            table.as_secs_f64() * 1e3,
            json.as_secs_f64() * 1e3,
            state.as_secs_f64() * 1e3,
            db as f64 / 1e6,
            fill.as_secs_f64()
        );
    }
}
