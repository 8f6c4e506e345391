//! SQL for named identities. Only PHC hashes reach this file, never a secret.

use rusqlite::{params, Connection, OptionalExtension};

use super::errors::Fail;
use crate::store::identity::{validate_name, validate_role};
use crate::store::{Identity, PhcHash, StoreError, UnixTime};

fn roles_of(conn: &Connection, name: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT role FROM identity_roles WHERE identity = ?1 ORDER BY role")?;
    let rows = stmt.query_map([name], |row| row.get(0))?;
    rows.collect()
}

fn not_found(name: &str) -> Fail {
    Fail::Store(StoreError::NotFound(format!("identity {name:?}")))
}

pub(super) fn add(
    conn: &Connection,
    name: &str,
    hash: &PhcHash,
    roles: &[String],
    at: UnixTime,
) -> Result<Identity, Fail> {
    validate_name(name)?;
    for role in roles {
        validate_role(role)?;
    }
    let exists: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM identities WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
        .optional()?;
    if exists.is_some() {
        return Err(StoreError::Conflict(format!("identity {name:?} already exists")).into());
    }
    conn.prepare_cached("INSERT INTO identities (name, phc, created_at) VALUES (?1, ?2, ?3)")?
        .execute(params![name, hash.as_str(), at])?;
    let mut insert = conn
        .prepare_cached("INSERT OR IGNORE INTO identity_roles (identity, role) VALUES (?1, ?2)")?;
    for role in roles {
        insert.execute([name, role])?;
    }
    Ok(Identity {
        name: name.to_string(),
        roles: roles_of(conn, name)?,
        created_at: at,
        disabled: false,
    })
}

pub(super) fn list(conn: &Connection) -> Result<Vec<Identity>, Fail> {
    let mut stmt =
        conn.prepare_cached("SELECT name, created_at, disabled FROM identities ORDER BY name")?;
    let rows = stmt.query_map([], |row| {
        Ok(Identity {
            name: row.get(0)?,
            roles: Vec::new(),
            created_at: row.get(1)?,
            disabled: row.get(2)?,
        })
    })?;
    let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    for identity in &mut out {
        identity.roles = roles_of(conn, &identity.name)?;
    }
    Ok(out)
}

pub(super) fn with_hash(
    conn: &Connection,
    name: &str,
) -> Result<Option<(Identity, PhcHash)>, Fail> {
    let found = conn
        .prepare_cached("SELECT name, created_at, disabled, phc FROM identities WHERE name = ?1")?
        .query_row([name], |row| {
            Ok((
                Identity {
                    name: row.get(0)?,
                    roles: Vec::new(),
                    created_at: row.get(1)?,
                    disabled: row.get(2)?,
                },
                PhcHash::new(row.get(3)?),
            ))
        })
        .optional()?;
    match found {
        Some((mut identity, hash)) => {
            identity.roles = roles_of(conn, name)?;
            Ok(Some((identity, hash)))
        }
        None => Ok(None),
    }
}

pub(super) fn remove(conn: &Connection, name: &str) -> Result<bool, Fail> {
    // Roles go with it (ON DELETE CASCADE).
    let n = conn
        .prepare_cached("DELETE FROM identities WHERE name = ?1")?
        .execute([name])?;
    Ok(n > 0)
}

pub(super) fn set_hash(conn: &Connection, name: &str, hash: &PhcHash) -> Result<(), Fail> {
    let n = conn
        .prepare_cached("UPDATE identities SET phc = ?2 WHERE name = ?1")?
        .execute(params![name, hash.as_str()])?;
    if n == 0 {
        return Err(not_found(name));
    }
    Ok(())
}

pub(super) fn set_disabled(conn: &Connection, name: &str, disabled: bool) -> Result<(), Fail> {
    let n = conn
        .prepare_cached("UPDATE identities SET disabled = ?2 WHERE name = ?1")?
        .execute(params![name, disabled])?;
    if n == 0 {
        return Err(not_found(name));
    }
    Ok(())
}
