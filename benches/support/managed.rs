//! `KEYWARDEN_BENCH_MANAGED_KEYS` for benches/overhead.rs: a metadata store with
//! many managed keys, the benchmarked one among them.

use std::path::Path;
use std::time::Instant;

/// `KEYWARDEN_BENCH_MANAGED_KEYS=N`: the metadata store holds N managed keys, one
/// of them the benchmarked EC key (label `bench-ec`, `CKA_ID` `BENCH_EC_ID`,
/// active), so every sign and search pays the lifecycle checks, in either
/// profile (transparent mode checks managed keys too).
pub fn managed_keys() -> Option<usize> {
    let n = std::env::var("KEYWARDEN_BENCH_MANAGED_KEYS").ok()?;
    let n: usize = n
        .parse()
        .unwrap_or_else(|_| panic!("KEYWARDEN_BENCH_MANAGED_KEYS={n:?}: not a number"));
    Some(n.max(1))
}

/// Registers the benchmarked key and `n - 1` others (one active version each)
/// through the store API, before Keywarden's `C_Initialize` indexes the store.
pub fn populate_store(conf: &Path, serial: &str, bench_id: &[u8], n: usize) {
    use keywarden::store::{KeyState, NewKey, NewVersion, Store};
    let config = keywarden::config::Config::load(conf).expect("configuration");
    let store = keywarden::store::open(&config.store).expect("store");
    let now = keywarden::store::now();
    let started = Instant::now();
    for i in 0..n {
        let (label, id) = match i {
            0 => ("bench-ec".to_owned(), bench_id.to_vec()),
            _ => (
                format!("managed-{i:05}"),
                format!("managed-id-{i:05}").into_bytes(),
            ),
        };
        let key = store
            .create_key(
                &NewKey {
                    label,
                    owner: None,
                    classification: None,
                    rotation_rule: None,
                },
                now,
            )
            .expect("create_key");
        store
            .add_version(
                key.id,
                &NewVersion {
                    token_serial: serial.to_owned(),
                    cka_id: id,
                    algorithm: "CKK_EC".into(),
                    size_bits: None,
                    curve: Some("P-256".into()),
                },
                KeyState::Active,
                now,
            )
            .expect("add_version");
    }
    eprintln!(
        "store: {n} managed keys registered in {:.1?} (the benchmarked key is one of them)",
        started.elapsed()
    );
}

/// Prints the usage counters Keywarden recorded for the benchmarked key (read after
/// its `C_Finalize` flushed them); none means the key was not managed.
pub fn report_usage(conf: &Path, bench_id: &[u8]) {
    use keywarden::store::Store;
    let config = keywarden::config::Config::load(conf).expect("configuration");
    let store = keywarden::store::open(&config.store).expect("store");
    let snapshot = store.snapshot().expect("snapshot");
    let v = snapshot
        .versions
        .iter()
        .find(|v| v.cka_id == bench_id)
        .expect("the benchmarked key's version");
    eprintln!(
        "store: the benchmarked key (managed, {}) was used {} times through Keywarden ({} managed keys in the store)",
        v.state,
        v.usage.ops,
        snapshot.keys.len()
    );
}
