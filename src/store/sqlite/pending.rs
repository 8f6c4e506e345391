//! SQL for rotations in flight (`pending_rotations`, schema version 2): the intent
//! a rotation or registration writes before generating objects, and clears when
//! their version is recorded.

use rusqlite::{params, Connection};

use super::errors::Fail;
use crate::store::{PendingRotation, StoreError};

pub(super) fn begin(conn: &Connection, p: &PendingRotation) -> Result<(), Fail> {
    if p.cka_id.is_empty() || p.token_serial.is_empty() || p.label.is_empty() {
        return Err(StoreError::Invalid(
            "a pending rotation needs a token serial, a CKA_ID and a label".into(),
        )
        .into());
    }
    let live: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM key_versions \
             WHERE token_serial = ?1 AND cka_id = ?2 AND state <> 'destroyed'",
        )?
        .query_row(params![p.token_serial, p.cka_id], |row| row.get(0))?;
    let pending: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM pending_rotations WHERE token_serial = ?1 AND cka_id = ?2",
        )?
        .query_row(params![p.token_serial, p.cka_id], |row| row.get(0))?;
    if live + pending > 0 {
        return Err(StoreError::Conflict(format!(
            "CKA_ID already belongs to a version or a rotation in flight on token {}",
            p.token_serial
        ))
        .into());
    }
    conn.prepare_cached(
        "INSERT INTO pending_rotations (token_serial, cka_id, label, started_at) \
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![p.token_serial, p.cka_id, p.label, p.started_at])?;
    Ok(())
}

pub(super) fn list(conn: &Connection, token_serial: &str) -> Result<Vec<PendingRotation>, Fail> {
    let mut stmt = conn.prepare_cached(
        "SELECT token_serial, cka_id, label, started_at FROM pending_rotations \
         WHERE token_serial = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([token_serial], |row| {
        Ok(PendingRotation {
            token_serial: row.get(0)?,
            cka_id: row.get(1)?,
            label: row.get(2)?,
            started_at: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn clear(conn: &Connection, token_serial: &str, cka_id: &[u8]) -> Result<bool, Fail> {
    let n = conn
        .prepare_cached("DELETE FROM pending_rotations WHERE token_serial = ?1 AND cka_id = ?2")?
        .execute(params![token_serial, cka_id])?;
    Ok(n > 0)
}
