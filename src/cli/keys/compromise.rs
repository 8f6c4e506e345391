//! `keys compromise`: the revocation file first, then the store (docs/store.md,
//! "Revocation while the store is locked").

use super::Ctx;
use crate::error::{Error, Result};
use crate::store::{self, KeyState, KeyVersion, Store, StoreError};

/// Marks `v` compromised: appends it to the revocation file, which running modules
/// enforce without the store's write lock (any process that may write the store
/// can hold that lock), then moves it in the store. A store locked beyond the busy
/// timeout is an error naming the holder and saying the compromise is enforced.
pub(super) fn compromise(
    cx: &Ctx,
    v: &KeyVersion,
    label: &str,
    reason: &str,
) -> Result<KeyVersion> {
    let dir = &cx.config.store.dir;
    let revoked_file = dir.join(store::REVOKED_FILE);
    let sharing = store::OpenOptions::from_config(&cx.config.store)?.sharing;
    let side = store::revoke(dir, sharing, v, cx.now);
    let stored = cx
        .store
        .set_state(v.id, KeyState::Compromised, Some(reason), cx.now);
    match (side, stored) {
        (Ok(()), Ok(changed)) => Ok(changed),
        (Err(e), Ok(changed)) => {
            // In the store, so enforced all the same; a revocation file that
            // cannot be used makes modules refuse every key use until it is fixed.
            eprintln!(
                "keywarden: warning: {} not written ({e}); the compromise is in the store",
                revoked_file.display()
            );
            Ok(changed)
        }
        (Ok(()), Err(StoreError::Locked { path, timeout_ms })) => Err(Error::Config(format!(
            "store {} is locked ({}) for longer than {timeout_ms} ms: the compromise of {label:?} \
             version {} is enforced through {} (running modules refuse the version within 1 s), \
             but the store still has it {}; run this command again once the lock is released",
            path.display(),
            crate::cli::locks::describe_holders(&path),
            v.version,
            revoked_file.display(),
            v.state
        ))),
        (Err(side), Err(e)) => Err(Error::Config(format!(
            "the compromise of {label:?} version {} was not recorded: {e}; and {}: {side}",
            v.version,
            revoked_file.display()
        ))),
        (Ok(()), Err(e)) => Err(e.into()),
    }
}
