//! SQL for managed keys, versions, usage counters and the change counter.
//!
//! SQL text is only ever assembled from constant fragments; values are always bound.

use rusqlite::types::Type;
use rusqlite::{params, Connection, Params, Row};

use super::errors::Fail;
use crate::store::{
    KeyId, KeyState, KeyVersion, ManagedKey, NewKey, NewVersion, Rotation, Snapshot, StoreError,
    UnixTime, Usage, UsageDelta, VersionId,
};

/// The points inside a rotation where a test may inject a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RotateStep {
    /// The new version is inserted (pre-activation).
    Inserted,
    /// The previous active version is deactivated.
    Deactivated,
    /// The new version is active; only the commit remains.
    Activated,
}

/// The change counter (see `schema`).
pub(super) fn change_seq(conn: &Connection) -> rusqlite::Result<u64> {
    let seq: i64 = conn
        .prepare_cached("SELECT change_seq FROM meta WHERE id = 1")?
        .query_row([], |row| row.get(0))?;
    u64::try_from(seq).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, seq))
}

/// Turns a bad stored value into a conversion error (classified as corruption).
fn bad_value(col: usize, e: StoreError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, Type::Text, Box::new(e))
}

fn to_u64(col: usize, v: i64) -> rusqlite::Result<u64> {
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(col, v))
}

fn to_u32(col: usize, v: i64) -> rusqlite::Result<u32> {
    u32::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(col, v))
}

fn opt_u32(col: usize, v: Option<i64>) -> rusqlite::Result<Option<u32>> {
    v.map(|v| to_u32(col, v)).transpose()
}

const KEY_COLS: &str = "id, label, owner, classification, rotation_rule, created_at";

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<ManagedKey> {
    let classification = row
        .get::<_, Option<String>>(3)?
        .map(|c| c.parse().map_err(|e| bad_value(3, e)))
        .transpose()?;
    Ok(ManagedKey {
        id: KeyId(row.get(0)?),
        label: row.get(1)?,
        owner: row.get(2)?,
        classification,
        rotation_rule: row.get(4)?,
        created_at: row.get(5)?,
    })
}

const VERSION_SELECT: &str = "SELECT v.id, v.key_id, v.version, v.token_serial, v.cka_id, \
     v.algorithm, v.size_bits, v.curve, v.state, v.reason, v.created_at, v.state_changed_at, \
     v.activated_at, v.suspended_at, v.deactivated_at, v.compromised_at, v.destroyed_at, \
     coalesce(u.ops, 0), coalesce(u.bytes, 0), u.last_use_at \
     FROM key_versions v LEFT JOIN usage u ON u.version_id = v.id";

fn version_from_row(row: &Row<'_>) -> rusqlite::Result<KeyVersion> {
    let state: String = row.get(8)?;
    Ok(KeyVersion {
        id: VersionId(row.get(0)?),
        key_id: KeyId(row.get(1)?),
        version: to_u32(2, row.get(2)?)?,
        token_serial: row.get(3)?,
        cka_id: row.get(4)?,
        algorithm: row.get(5)?,
        size_bits: opt_u32(6, row.get(6)?)?,
        curve: row.get(7)?,
        state: state.parse().map_err(|e| bad_value(8, e))?,
        reason: row.get(9)?,
        created_at: row.get(10)?,
        state_changed_at: row.get(11)?,
        activated_at: row.get(12)?,
        suspended_at: row.get(13)?,
        deactivated_at: row.get(14)?,
        compromised_at: row.get(15)?,
        destroyed_at: row.get(16)?,
        usage: Usage {
            ops: to_u64(17, row.get(17)?)?,
            bytes: to_u64(18, row.get(18)?)?,
            last_use_at: row.get(19)?,
        },
    })
}

/// Keys matching a constant `WHERE` fragment, by id.
pub(super) fn keys_where(
    conn: &Connection,
    filter: &'static str,
    params: impl Params,
) -> Result<Vec<ManagedKey>, Fail> {
    let sql = format!("SELECT {KEY_COLS} FROM managed_keys {filter} ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params, key_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Versions matching a constant `WHERE` fragment, by key then version.
pub(super) fn versions_where(
    conn: &Connection,
    filter: &'static str,
    params: impl Params,
) -> Result<Vec<KeyVersion>, Fail> {
    let sql = format!("{VERSION_SELECT} {filter} ORDER BY v.key_id, v.version");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params, version_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn key(conn: &Connection, id: KeyId) -> Result<Option<ManagedKey>, Fail> {
    Ok(keys_where(conn, "WHERE id = ?1", [id.0])?.pop())
}

pub(super) fn version(conn: &Connection, id: VersionId) -> Result<Option<KeyVersion>, Fail> {
    Ok(versions_where(conn, "WHERE v.id = ?1", [id.0])?.pop())
}

fn existing_key(conn: &Connection, id: KeyId) -> Result<ManagedKey, Fail> {
    key(conn, id)?
        .ok_or_else(|| Fail::Store(StoreError::NotFound(format!("managed key #{}", id.0))))
}

fn active_version(conn: &Connection, key: KeyId) -> Result<Option<VersionId>, Fail> {
    let mut stmt =
        conn.prepare_cached("SELECT id FROM key_versions WHERE key_id = ?1 AND state = 'active'")?;
    let mut rows = stmt.query_map([key.0], |row| row.get(0))?;
    Ok(rows.next().transpose()?.map(VersionId))
}

pub(super) fn snapshot(conn: &Connection) -> Result<Snapshot, Fail> {
    Ok(Snapshot {
        change_seq: change_seq(conn)?,
        keys: keys_where(conn, "", [])?,
        versions: versions_where(conn, "", [])?,
    })
}

pub(super) fn create_key(
    conn: &Connection,
    key: &NewKey,
    at: UnixTime,
) -> Result<ManagedKey, Fail> {
    if key.label.is_empty() {
        return Err(StoreError::Invalid("a managed key needs a non-empty label".into()).into());
    }
    conn.prepare_cached(
        "INSERT INTO managed_keys (label, owner, classification, rotation_rule, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        key.label,
        key.owner,
        key.classification.map(|c| c.as_str()),
        key.rotation_rule,
        at
    ])?;
    Ok(ManagedKey {
        id: KeyId(conn.last_insert_rowid()),
        label: key.label.clone(),
        owner: key.owner.clone(),
        classification: key.classification,
        rotation_rule: key.rotation_rule.clone(),
        created_at: at,
    })
}

pub(super) fn add_version(
    conn: &Connection,
    key: KeyId,
    new: &NewVersion,
    state: KeyState,
    at: UnixTime,
) -> Result<KeyVersion, Fail> {
    if !matches!(state, KeyState::PreActivation | KeyState::Active) {
        return Err(StoreError::Invalid(format!(
            "a new version starts pre-activation or active, not {state}"
        ))
        .into());
    }
    if new.cka_id.is_empty() || new.token_serial.is_empty() || new.algorithm.is_empty() {
        return Err(StoreError::Invalid(
            "a version needs a token serial, a non-empty CKA_ID and an algorithm".into(),
        )
        .into());
    }
    let managed = existing_key(conn, key)?;
    if state == KeyState::Active && active_version(conn, key)?.is_some() {
        return Err(StoreError::Conflict(format!(
            "key {:?} (#{}) already has an active version",
            managed.label, key.0
        ))
        .into());
    }
    // Said plainly here; the partial unique index is the backstop.
    let clash = versions_where(
        conn,
        "WHERE v.token_serial = ?1 AND v.cka_id = ?2 AND v.state <> 'destroyed'",
        params![new.token_serial, new.cka_id],
    )?;
    if let Some(other) = clash.first() {
        return Err(StoreError::Conflict(format!(
            "CKA_ID already belongs to version {} of key #{} on token {}",
            other.version, other.key_id.0, new.token_serial
        ))
        .into());
    }
    let next: i64 = conn
        .prepare_cached("SELECT coalesce(max(version), 0) + 1 FROM key_versions WHERE key_id = ?1")?
        .query_row([key.0], |row| row.get(0))?;
    let activated = (state == KeyState::Active).then_some(at);
    conn.prepare_cached(
        "INSERT INTO key_versions (key_id, version, token_serial, cka_id, algorithm, size_bits, \
         curve, state, created_at, state_changed_at, activated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)",
    )?
    .execute(params![
        key.0,
        next,
        new.token_serial,
        new.cka_id,
        new.algorithm,
        new.size_bits,
        new.curve,
        state.as_str(),
        at,
        activated
    ])?;
    let id = VersionId(conn.last_insert_rowid());
    // The intent of the rotation or registration that made these objects is
    // fulfilled in this same transaction (see `pending`).
    super::pending::clear(conn, &new.token_serial, &new.cka_id)?;
    version(conn, id)?.ok_or_else(|| Fail::Store(StoreError::NotFound("inserted version".into())))
}

pub(super) fn set_state(
    conn: &Connection,
    id: VersionId,
    to: KeyState,
    reason: Option<&str>,
    at: UnixTime,
) -> Result<KeyVersion, Fail> {
    let current = version(conn, id)?
        .ok_or_else(|| Fail::Store(StoreError::NotFound(format!("key version #{}", id.0))))?;
    if !current.state.can_become(to) {
        return Err(StoreError::InvalidTransition {
            from: current.state.as_str(),
            to: to.as_str(),
        }
        .into());
    }
    if to == KeyState::Active && active_version(conn, current.key_id)?.is_some() {
        return Err(StoreError::Conflict(format!(
            "key #{} already has an active version",
            current.key_id.0
        ))
        .into());
    }
    // Each state's own timestamp; the first activation is kept across suspend/resume.
    let stamp = match to {
        KeyState::Active => "activated_at = coalesce(activated_at, ?3), suspended_at = NULL",
        KeyState::Suspended => "suspended_at = ?3",
        KeyState::Deactivated => "deactivated_at = ?3",
        KeyState::Compromised => "compromised_at = ?3",
        KeyState::Destroyed => "destroyed_at = ?3",
        // No transition leads back to pre-activation (`can_become` refused it).
        KeyState::PreActivation => "state_changed_at = ?3",
    };
    let sql = format!(
        "UPDATE key_versions SET state = ?1, reason = ?2, state_changed_at = ?3, {stamp} \
         WHERE id = ?4"
    );
    conn.prepare_cached(&sql)?
        .execute(params![to.as_str(), reason, at, id.0])?;
    version(conn, id)?.ok_or_else(|| Fail::Store(StoreError::NotFound("updated version".into())))
}

pub(super) fn rotate(
    conn: &Connection,
    key: KeyId,
    expected_active: Option<VersionId>,
    new: &NewVersion,
    reason: Option<&str>,
    at: UnixTime,
    hook: &mut dyn FnMut(RotateStep) -> Result<(), StoreError>,
) -> Result<Rotation, Fail> {
    let managed = existing_key(conn, key)?;
    let active = active_version(conn, key)?;
    if active != expected_active {
        let show = |v: Option<VersionId>| v.map_or("none".to_string(), |v| format!("#{}", v.0));
        return Err(StoreError::Conflict(format!(
            "key {:?}: the active version is {}, not {} (rotated by another process?)",
            managed.label,
            show(active),
            show(expected_active)
        ))
        .into());
    }
    let fresh = add_version(conn, key, new, KeyState::PreActivation, at)?;
    hook(RotateStep::Inserted)?;
    // Deactivate before activating: the one-active index must hold after every
    // statement, not only at commit.
    let previous = match active {
        Some(old) => {
            let v = set_state(conn, old, KeyState::Deactivated, reason, at)?;
            hook(RotateStep::Deactivated)?;
            Some(v)
        }
        None => None,
    };
    let current = set_state(conn, fresh.id, KeyState::Active, reason, at)?;
    hook(RotateStep::Activated)?;
    Ok(Rotation { previous, current })
}

pub(super) fn add_usage(conn: &Connection, deltas: &[UsageDelta]) -> Result<(), Fail> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO usage (version_id, ops, bytes, last_use_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (version_id) DO UPDATE SET ops = ops + excluded.ops, \
         bytes = bytes + excluded.bytes, \
         last_use_at = max(coalesce(last_use_at, excluded.last_use_at), excluded.last_use_at)",
    )?;
    for d in deltas {
        // Saturate: 2^63 operations will not happen; a wrapped counter would be worse.
        let ops = i64::try_from(d.ops).unwrap_or(i64::MAX);
        let bytes = i64::try_from(d.bytes).unwrap_or(i64::MAX);
        stmt.execute(params![d.version.0, ops, bytes, d.last_use_at])?;
    }
    Ok(())
}
