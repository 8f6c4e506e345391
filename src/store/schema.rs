//! The SQLite schema and its ordered migrations.
//!
//! `MIGRATIONS[i]` takes a database from version `i` to `i + 1`; the version lives in
//! `PRAGMA user_version`, which SQLite stores in the file header and changes inside
//! the same transaction as the tables, so a migration is all or nothing. Migrations
//! are append-only: a released step is never edited, a change is a new step.
//!
//! Invariants are constraints wherever SQLite can hold them, so that no writer — this
//! code, a future one, or an administrator with the `sqlite3` shell — can break them:
//! - at most one active version per key (partial unique index `one_active_version`);
//! - one live version per (token, `CKA_ID`) (partial unique index; tombstones of
//!   destroyed versions may share a `CKA_ID` with a later object);
//! - versions numbered uniquely within a key;
//! - state spelled as one of the six SP 800-57 states, and each state's timestamp set
//!   once the version is in it;
//! - counters never negative; identities' roles deleted with them (foreign keys).
//!
//! `meta.change_seq` is bumped by triggers on every change to keys, versions and
//! identities — the things processes cache — and never by usage counters, so a reader
//! that sees the same number knows its cache is current.

/// `PRAGMA application_id` of a Keywarden store ("KWDN"): tells our file apart from
/// any other SQLite database put at the same path.
pub const APPLICATION_ID: i32 = 0x4B57_444E;

/// Version 1: managed keys, versions, usage, identities, change counter.
const V1: &str = r#"
CREATE TABLE meta (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    change_seq INTEGER NOT NULL CHECK (change_seq >= 0)
);
INSERT INTO meta (id, change_seq) VALUES (1, 0);

CREATE TABLE managed_keys (
    id             INTEGER PRIMARY KEY,
    label          TEXT NOT NULL CHECK (length(label) > 0),
    owner          TEXT,
    classification TEXT CHECK (classification IN
                       ('low', 'low-medium', 'medium', 'medium-high', 'high')),
    rotation_rule  TEXT,
    created_at     INTEGER NOT NULL
);
CREATE INDEX managed_keys_label ON managed_keys (label);

CREATE TABLE key_versions (
    id               INTEGER PRIMARY KEY,
    key_id           INTEGER NOT NULL REFERENCES managed_keys (id) ON DELETE RESTRICT,
    version          INTEGER NOT NULL CHECK (version >= 1),
    token_serial     TEXT NOT NULL,
    cka_id           BLOB NOT NULL CHECK (typeof(cka_id) = 'blob' AND length(cka_id) > 0),
    algorithm        TEXT NOT NULL CHECK (length(algorithm) > 0),
    size_bits        INTEGER CHECK (size_bits > 0),
    curve            TEXT,
    state            TEXT NOT NULL CHECK (state IN ('pre-activation', 'active', 'suspended',
                         'deactivated', 'compromised', 'destroyed')),
    reason           TEXT,
    created_at       INTEGER NOT NULL,
    state_changed_at INTEGER NOT NULL,
    activated_at     INTEGER,
    suspended_at     INTEGER,
    deactivated_at   INTEGER,
    compromised_at   INTEGER,
    destroyed_at     INTEGER,
    UNIQUE (key_id, version),
    CHECK (state <> 'active'      OR activated_at   IS NOT NULL),
    CHECK (state <> 'suspended'   OR suspended_at   IS NOT NULL),
    CHECK (state <> 'deactivated' OR deactivated_at IS NOT NULL),
    CHECK (state <> 'compromised' OR compromised_at IS NOT NULL),
    CHECK (state <> 'destroyed'   OR destroyed_at   IS NOT NULL)
);
CREATE UNIQUE INDEX one_active_version ON key_versions (key_id) WHERE state = 'active';
CREATE UNIQUE INDEX one_live_cka_id ON key_versions (token_serial, cka_id)
    WHERE state <> 'destroyed';

CREATE TABLE usage (
    version_id  INTEGER PRIMARY KEY REFERENCES key_versions (id) ON DELETE CASCADE,
    ops         INTEGER NOT NULL DEFAULT 0 CHECK (ops >= 0),
    bytes       INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    last_use_at INTEGER
);

CREATE TABLE identities (
    name       TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64 AND instr(name, ':') = 0),
    phc        TEXT NOT NULL CHECK (phc LIKE '$argon2id$%'),
    created_at INTEGER NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
);
CREATE TABLE identity_roles (
    identity TEXT NOT NULL REFERENCES identities (name) ON DELETE CASCADE ON UPDATE CASCADE,
    role     TEXT NOT NULL CHECK (length(role) > 0),
    PRIMARY KEY (identity, role)
) WITHOUT ROWID;

CREATE TRIGGER keys_ins AFTER INSERT ON managed_keys
    BEGIN UPDATE meta SET change_seq = change_seq + 1; END;
CREATE TRIGGER keys_upd AFTER UPDATE ON managed_keys
    BEGIN UPDATE meta SET change_seq = change_seq + 1; END;
CREATE TRIGGER keys_del AFTER DELETE ON managed_keys
    BEGIN UPDATE meta SET change_seq = change_seq + 1; END;
CREATE TRIGGER versions_ins AFTER INSERT ON key_versions
    BEGIN UPDATE meta SET change_seq = change_seq + 1; END;
CREATE TRIGGER versions_upd AFTER UPDATE ON key_versions
    BEGIN UPDATE meta SET change_seq = change_seq + 1; END;
CREATE TRIGGER versions_del AFTER DELETE ON key_versions
    BEGIN UPDATE meta SET change_seq = change_seq + 1; END;
CREATE TRIGGER identities_ins AFTER INSERT ON identities
    BEGIN UPDATE meta SET change_seq = change_seq + 1; END;
CREATE TRIGGER identities_upd AFTER UPDATE ON identities
    BEGIN UPDATE meta SET change_seq = change_seq + 1; END;
CREATE TRIGGER identities_del AFTER DELETE ON identities
    BEGIN UPDATE meta SET change_seq = change_seq + 1; END;
CREATE TRIGGER roles_ins AFTER INSERT ON identity_roles
    BEGIN UPDATE meta SET change_seq = change_seq + 1; END;
CREATE TRIGGER roles_del AFTER DELETE ON identity_roles
    BEGIN UPDATE meta SET change_seq = change_seq + 1; END;
"#;

/// Version 2: rotations and registrations in flight. A row is written before the
/// token objects of a new version are generated and deleted in the transaction that
/// records the version (or once its objects are gone again), so the objects of a
/// rotation that died half way are known by their `CKA_ID` on their token — and
/// objects the store never wrote an intent for (another store's keys on a shared
/// token) are never taken for orphans. No trigger: no process caches these rows.
const V2_PENDING_ROTATIONS: &str = r#"
CREATE TABLE pending_rotations (
    id           INTEGER PRIMARY KEY,
    token_serial TEXT NOT NULL CHECK (length(token_serial) > 0),
    cka_id       BLOB NOT NULL CHECK (typeof(cka_id) = 'blob' AND length(cka_id) > 0),
    label        TEXT NOT NULL CHECK (length(label) > 0),
    started_at   INTEGER NOT NULL,
    UNIQUE (token_serial, cka_id)
);
"#;

/// Version 3: the id of the audit chain that records this store's changes
/// (`keywarden init`/first use binds it; the CLI and the module refuse a trail
/// of another chain).
const V3_AUDIT_CHAIN: &str = r#"
ALTER TABLE meta ADD COLUMN audit_chain TEXT
    CHECK (audit_chain IS NULL OR (length(audit_chain) = 32 AND audit_chain NOT GLOB '*[^0-9a-f]*'));
"#;

/// Every migration, in order. The schema version this build writes is its length.
pub const MIGRATIONS: &[&str] = &[V1, V2_PENDING_ROTATIONS, V3_AUDIT_CHAIN];

/// The newest schema version this build understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;
