//! The metadata store: managed keys, their versions, states and usage counters
//! (lifecycle), and named identities (access policy).
//!
//! [`Store`] is the small interface the rest of Keywarden uses, so that a shared server
//! database can later serve a fleet; [`SqliteStore`] is the embedded default, one file
//! `<store.dir>/keywarden.db` shared by every process that loads the module.
//!
//! # Failure
//! Every method returns [`StoreError`]; nothing falls back to a default. A store that
//! is missing, locked longer than the busy timeout, read-only, corrupt or newer than
//! this build makes the operations that need it fail (`CKR_GENERAL_ERROR` through
//! [`crate::Error::Store`]).
//!
//! # Seeing changes from other processes
//! Processes cache what they enforce (states, identities) and must see a change made
//! by the CLI within a second without a store query per operation. Two primitives:
//! - [`Store::change_seq`]: a counter bumped by triggers on every change to keys,
//!   versions or identities (never by usage counters) — the authority, one integer
//!   read. [`Store::snapshot`] returns the rows together with the counter they match.
//! - [`Store::change_stamp`]: a tiny file rewritten (atomically, by rename) after every
//!   commit that moved the counter. [`ChangeWatcher`] turns it into a per-operation
//!   check costing one clock read and one atomic load, with a `stat` at most every
//!   poll interval and a forced re-read of `change_seq` every resync interval (which
//!   covers a writer that died between its commit and the stamp).
//!
//! # Fork
//! A SQLite connection must not be used or closed in a forked child (closing may
//! checkpoint or delete the parent's WAL): a child abandons the parent's store without
//! dropping it (`std::mem::forget`) and opens its own.

mod changes;
mod error;
pub mod identity;
mod revoked;
mod schema;
mod sqlite;
mod types;
mod usage;

use std::path::PathBuf;

pub use changes::{ChangeWatcher, DEFAULT_POLL, DEFAULT_RESYNC};
pub use error::StoreError;
pub use revoked::{revoke, revoked, REVOKED_FILE};
pub use schema::SCHEMA_VERSION;
pub use sqlite::{OpenOptions, SqliteStore, DB_FILE, STAMP_FILE};
pub use types::*;
pub use usage::UsageAccumulator;

/// The store's result type.
pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// Opens the store the configuration names.
pub fn open(config: &crate::config::StoreConfig) -> StoreResult<SqliteStore> {
    SqliteStore::open(&config.dir, &OpenOptions::from_config(config)?)
}

/// Opens the store the configuration names, creating `keywarden.db` when it does
/// not exist yet: `keywarden init` only (every other opener refuses a missing store).
pub fn create(config: &crate::config::StoreConfig) -> StoreResult<SqliteStore> {
    SqliteStore::create(&config.dir, &OpenOptions::from_config(config)?)
}

/// The metadata store. Each method is one short transaction; writers take the write
/// lock up front, so concurrent writers queue (up to the busy timeout) instead of
/// failing half way.
pub trait Store: Send + Sync {
    // --- health and change propagation ---

    /// The schema version of the open store.
    fn schema_version(&self) -> StoreResult<u32>;
    /// A full integrity check; [`StoreError::Corrupt`] when it finds anything.
    fn integrity_check(&self) -> StoreResult<()>;
    /// The change counter (one integer read). Equal values mean nothing cached changed.
    fn change_seq(&self) -> StoreResult<u64>;
    /// A file whose metadata changes after every commit that moved `change_seq`, for
    /// [`ChangeWatcher`]; `None` for a store without one (then poll `change_seq`).
    fn change_stamp(&self) -> Option<PathBuf>;
    /// Keys and versions with the counter they correspond to, read in one transaction.
    fn snapshot(&self) -> StoreResult<Snapshot>;

    // --- managed keys ---

    /// Registers a key (no versions yet).
    fn create_key(&self, key: &NewKey, at: UnixTime) -> StoreResult<ManagedKey>;
    /// One key by id.
    fn key(&self, id: KeyId) -> StoreResult<Option<ManagedKey>>;
    /// Keys with this label (several when applications reused a label).
    fn keys_by_label(&self, label: &str) -> StoreResult<Vec<ManagedKey>>;
    /// Every key, by id.
    fn list_keys(&self) -> StoreResult<Vec<ManagedKey>>;

    // --- versions ---

    /// Adds the next version of `key` in `state` (`PreActivation` or `Active`; adding an
    /// active one while another is active is a [`StoreError::Conflict`]).
    fn add_version(
        &self,
        key: KeyId,
        new: &NewVersion,
        state: KeyState,
        at: UnixTime,
    ) -> StoreResult<KeyVersion>;
    /// Versions of a key, oldest first, with their usage.
    fn versions(&self, key: KeyId) -> StoreResult<Vec<KeyVersion>>;
    /// One version by id.
    fn version(&self, id: VersionId) -> StoreResult<Option<KeyVersion>>;
    /// The live (non-destroyed) version holding this `CKA_ID` on this token.
    fn version_by_cka_id(
        &self,
        token_serial: &str,
        cka_id: &[u8],
    ) -> StoreResult<Option<KeyVersion>>;
    /// Moves a version to `to` (SP 800-57 transitions only), recording the time and
    /// the reason.
    fn set_state(
        &self,
        id: VersionId,
        to: KeyState,
        reason: Option<&str>,
        at: UnixTime,
    ) -> StoreResult<KeyVersion>;
    /// Rotation in one transaction: inserts the next version, deactivates the active
    /// one and activates the new one. `expected_active` is the version the caller
    /// believes is active; if another process rotated first the call fails with
    /// [`StoreError::Conflict`] and changes nothing (exactly one new version when
    /// processes race).
    fn rotate(
        &self,
        key: KeyId,
        expected_active: Option<VersionId>,
        new: &NewVersion,
        reason: Option<&str>,
        at: UnixTime,
    ) -> StoreResult<Rotation>;

    // --- rotations in flight ---

    /// Records that objects with `p.cka_id` are about to be generated on
    /// `p.token_serial` (before generating them). A [`StoreError::Conflict`] when a
    /// live version or another intent already holds that `CKA_ID` there.
    fn begin_pending(&self, p: &PendingRotation) -> StoreResult<()>;
    /// The intents on one token, oldest first.
    fn pending(&self, token_serial: &str) -> StoreResult<Vec<PendingRotation>>;
    /// Removes an intent (its objects were destroyed, or never made); `false` if
    /// there was none. [`Store::add_version`] and [`Store::rotate`] remove the
    /// intent of the version they record in their own transaction.
    fn clear_pending(&self, token_serial: &str, cka_id: &[u8]) -> StoreResult<bool>;

    // --- usage ---

    /// Adds batched counter increments in one transaction (additive, so concurrent
    /// flushes from many processes never lose an update).
    fn add_usage(&self, deltas: &[UsageDelta]) -> StoreResult<()>;

    // --- named identities (hashes only; see [`identity`] for hashing and verifying) ---

    /// Adds an identity with its PHC hash and roles.
    fn add_identity(
        &self,
        name: &str,
        hash: &PhcHash,
        roles: &[String],
        at: UnixTime,
    ) -> StoreResult<Identity>;
    /// Every identity, by name.
    fn identities(&self) -> StoreResult<Vec<Identity>>;
    /// One identity and its hash.
    fn identity_with_hash(&self, name: &str) -> StoreResult<Option<(Identity, PhcHash)>>;
    /// Removes an identity; `false` if there was none.
    fn remove_identity(&self, name: &str) -> StoreResult<bool>;
    /// Replaces an identity's hash.
    fn set_identity_hash(&self, name: &str, hash: &PhcHash) -> StoreResult<()>;
    /// Disables or re-enables an identity.
    fn set_identity_disabled(&self, name: &str, disabled: bool) -> StoreResult<()>;

    // --- the audit chain that records this store's changes ---

    /// The id of the audit chain bound to this store; `None` until one is bound.
    fn audit_chain(&self) -> StoreResult<Option<String>>;
    /// Binds the store to `chain` if it is bound to none yet (or, with `replace`,
    /// whatever it was bound to), in one transaction; returns the chain bound
    /// afterwards, which differs from `chain` when another was bound first.
    fn bind_audit_chain(&self, chain: &str, replace: bool) -> StoreResult<String>;
}
