//! The embedded store: one SQLite file shared by every process that loads the module.
//!
//! Concurrency: WAL journal (readers never wait for the writer), a bounded busy
//! timeout, short transactions, and `BEGIN IMMEDIATE` for every writer — a deferred
//! transaction that upgrades from reading to writing gets `SQLITE_BUSY` at once,
//! without waiting, when another process is writing; taking the write lock first
//! makes writers queue instead. `synchronous = FULL`: state changes (a compromise!)
//! must survive a power loss, and they are rare enough for the fsync.
//!
//! Within a process the connection sits behind a mutex: the hot path does not query
//! the store (see the module docs of `store`), so there is nothing to gain from a pool.

mod errors;
mod identities;
mod keys;
mod open;
mod pending;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_keys;
#[cfg(test)]
mod tests_procs;

use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::{
    changes, Identity, KeyId, KeyState, KeyVersion, ManagedKey, NewKey, NewVersion,
    PendingRotation, PhcHash, Rotation, Snapshot, Store, StoreError, StoreResult, UnixTime,
    UsageDelta, VersionId,
};
use errors::{Ctx, Fail};

pub(crate) use keys::RotateStep;

/// The database file inside `store.dir`.
pub const DB_FILE: &str = "keywarden.db";
/// The change stamp inside `store.dir` (see [`super::ChangeWatcher`]).
pub const STAMP_FILE: &str = "keywarden.changes";

/// How to open the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// How long a writer waits for another process's write lock before failing with
    /// [`StoreError::Locked`].
    pub busy_timeout: Duration,
    /// Who shares the directory besides its owner (`store.group`).
    pub sharing: crate::fsguard::Sharing,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            busy_timeout: Duration::from_millis(crate::config::DEFAULT_BUSY_TIMEOUT_MS),
            sharing: crate::fsguard::Sharing::default(),
        }
    }
}

impl OpenOptions {
    /// The options the configuration asks for.
    pub fn from_config(config: &crate::config::StoreConfig) -> StoreResult<OpenOptions> {
        Ok(OpenOptions {
            busy_timeout: Duration::from_millis(config.busy_timeout_ms),
            sharing: config
                .sharing()
                .map_err(|e| StoreError::Invalid(e.to_string()))?,
        })
    }
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    conn: Mutex<Connection>,
    ctx: Ctx,
    dir: PathBuf,
    sharing: crate::fsguard::Sharing,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.ctx.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (migrating if needed) `<dir>/keywarden.db`, which must exist
    /// ([`StoreError::Missing`] otherwise).
    pub fn open(dir: &Path, options: &OpenOptions) -> StoreResult<SqliteStore> {
        SqliteStore::open_or_create(dir, options, false)
    }

    /// Opens `<dir>/keywarden.db`, creating it first if it does not exist
    /// (`keywarden init`).
    pub fn create(dir: &Path, options: &OpenOptions) -> StoreResult<SqliteStore> {
        SqliteStore::open_or_create(dir, options, true)
    }

    fn open_or_create(dir: &Path, options: &OpenOptions, create: bool) -> StoreResult<SqliteStore> {
        let (conn, ctx) = open::open(dir, options, create)?;
        let store = SqliteStore {
            conn: Mutex::new(conn),
            ctx,
            dir: dir.to_path_buf(),
            sharing: options.sharing,
        };
        // A first opener creates the stamp so watchers have something to stat.
        if !store.stamp_path().exists() {
            let seq = store.change_seq()?;
            changes::publish(&store.stamp_path(), seq, store.sharing);
        }
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.ctx.path
    }

    fn stamp_path(&self) -> PathBuf {
        self.dir.join(STAMP_FILE)
    }

    /// Runs `f` in a deferred (read) transaction: one consistent snapshot.
    fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, Fail>) -> StoreResult<T> {
        let mut conn = self.conn.lock();
        let run = || -> Result<T, Fail> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        };
        run().map_err(|e| self.ctx.fail(e))
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction; on any error nothing is kept.
    /// After a commit that moved `change_seq`, rewrites the change stamp.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, Fail>) -> StoreResult<T> {
        let mut conn = self.conn.lock();
        let run = || -> Result<(T, u64, u64), Fail> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let before = keys::change_seq(&tx)?;
            let out = f(&tx)?;
            let after = keys::change_seq(&tx)?;
            tx.commit()?;
            Ok((out, before, after))
        };
        let (out, before, after) = run().map_err(|e| self.ctx.fail(e))?;
        drop(conn);
        if after != before {
            // After the commit: a watcher woken by the stamp must find the new rows.
            changes::publish(&self.stamp_path(), after, self.sharing);
        }
        Ok(out)
    }

    /// `rotate` with a hook called after each step, so tests can fail or kill the
    /// process half way and check that nothing was kept.
    pub(crate) fn rotate_with(
        &self,
        key: KeyId,
        expected_active: Option<VersionId>,
        new: &NewVersion,
        reason: Option<&str>,
        at: UnixTime,
        hook: &mut dyn FnMut(RotateStep) -> Result<(), StoreError>,
    ) -> StoreResult<Rotation> {
        self.write(|tx| keys::rotate(tx, key, expected_active, new, reason, at, hook))
    }
}

impl Store for SqliteStore {
    fn audit_chain(&self) -> StoreResult<Option<String>> {
        self.read(|tx| {
            Ok(
                tx.query_row("SELECT audit_chain FROM meta WHERE id = 1", [], |r| {
                    r.get(0)
                })?,
            )
        })
    }

    fn bind_audit_chain(&self, chain: &str, replace: bool) -> StoreResult<String> {
        self.write(|tx| {
            let only_unbound = if replace {
                ""
            } else {
                " AND audit_chain IS NULL"
            };
            tx.execute(
                &format!("UPDATE meta SET audit_chain = ?1 WHERE id = 1{only_unbound}"),
                [chain],
            )?;
            Ok(
                tx.query_row("SELECT audit_chain FROM meta WHERE id = 1", [], |r| {
                    r.get(0)
                })?,
            )
        })
    }

    fn schema_version(&self) -> StoreResult<u32> {
        self.read(|tx| Ok(open::user_version(tx)?))
    }

    fn integrity_check(&self) -> StoreResult<()> {
        let problems = self.read(|tx| Ok(open::integrity_problems(tx)?))?;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                path: self.ctx.path.clone(),
                detail: format!("integrity check failed: {}", problems.join("; ")),
            })
        }
    }

    fn change_seq(&self) -> StoreResult<u64> {
        let conn = self.conn.lock();
        keys::change_seq(&conn).map_err(|e| self.ctx.sql(e))
    }

    fn change_stamp(&self) -> Option<PathBuf> {
        Some(self.stamp_path())
    }

    fn snapshot(&self) -> StoreResult<Snapshot> {
        self.read(|tx| keys::snapshot(tx))
    }

    fn create_key(&self, key: &NewKey, at: UnixTime) -> StoreResult<ManagedKey> {
        self.write(|tx| keys::create_key(tx, key, at))
    }

    fn key(&self, id: KeyId) -> StoreResult<Option<ManagedKey>> {
        self.read(|tx| keys::key(tx, id))
    }

    fn keys_by_label(&self, label: &str) -> StoreResult<Vec<ManagedKey>> {
        self.read(|tx| keys::keys_where(tx, "WHERE label = ?1", [label]))
    }

    fn list_keys(&self) -> StoreResult<Vec<ManagedKey>> {
        self.read(|tx| keys::keys_where(tx, "", []))
    }

    fn add_version(
        &self,
        key: KeyId,
        new: &NewVersion,
        state: KeyState,
        at: UnixTime,
    ) -> StoreResult<KeyVersion> {
        self.write(|tx| keys::add_version(tx, key, new, state, at))
    }

    fn versions(&self, key: KeyId) -> StoreResult<Vec<KeyVersion>> {
        self.read(|tx| keys::versions_where(tx, "WHERE v.key_id = ?1", [key.0]))
    }

    fn version(&self, id: VersionId) -> StoreResult<Option<KeyVersion>> {
        self.read(|tx| keys::version(tx, id))
    }

    fn version_by_cka_id(
        &self,
        token_serial: &str,
        cka_id: &[u8],
    ) -> StoreResult<Option<KeyVersion>> {
        self.read(|tx| {
            let mut found = keys::versions_where(
                tx,
                "WHERE v.token_serial = ?1 AND v.cka_id = ?2 AND v.state <> 'destroyed'",
                rusqlite::params![token_serial, cka_id],
            )?;
            Ok(found.pop())
        })
    }

    fn set_state(
        &self,
        id: VersionId,
        to: KeyState,
        reason: Option<&str>,
        at: UnixTime,
    ) -> StoreResult<KeyVersion> {
        self.write(|tx| keys::set_state(tx, id, to, reason, at))
    }

    fn rotate(
        &self,
        key: KeyId,
        expected_active: Option<VersionId>,
        new: &NewVersion,
        reason: Option<&str>,
        at: UnixTime,
    ) -> StoreResult<Rotation> {
        self.rotate_with(key, expected_active, new, reason, at, &mut |_| Ok(()))
    }

    fn begin_pending(&self, p: &PendingRotation) -> StoreResult<()> {
        self.write(|tx| pending::begin(tx, p))
    }

    fn pending(&self, token_serial: &str) -> StoreResult<Vec<PendingRotation>> {
        self.read(|tx| pending::list(tx, token_serial))
    }

    fn clear_pending(&self, token_serial: &str, cka_id: &[u8]) -> StoreResult<bool> {
        self.write(|tx| pending::clear(tx, token_serial, cka_id))
    }

    fn add_usage(&self, deltas: &[UsageDelta]) -> StoreResult<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        self.write(|tx| keys::add_usage(tx, deltas))
    }

    fn add_identity(
        &self,
        name: &str,
        hash: &PhcHash,
        roles: &[String],
        at: UnixTime,
    ) -> StoreResult<Identity> {
        self.write(|tx| identities::add(tx, name, hash, roles, at))
    }

    fn identities(&self) -> StoreResult<Vec<Identity>> {
        self.read(|tx| identities::list(tx))
    }

    fn identity_with_hash(&self, name: &str) -> StoreResult<Option<(Identity, PhcHash)>> {
        self.read(|tx| identities::with_hash(tx, name))
    }

    fn remove_identity(&self, name: &str) -> StoreResult<bool> {
        self.write(|tx| identities::remove(tx, name))
    }

    fn set_identity_hash(&self, name: &str, hash: &PhcHash) -> StoreResult<()> {
        self.write(|tx| identities::set_hash(tx, name, hash))
    }

    fn set_identity_disabled(&self, name: &str, disabled: bool) -> StoreResult<()> {
        self.write(|tx| identities::set_disabled(tx, name, disabled))
    }
}
