//! The store knows which audit chain records its changes: `meta.audit_chain` holds
//! the chain's id ([`super::chain_id`]: the hash of its first record, kept in the
//! head). The CLI and the module check it before making a change, so a second
//! configuration pointing at the same store but at another trail directory is
//! refused instead of recording `users add evil --role admin` in a throwaway trail.
//!
//! - A store bound to no chain yet (a new store, or one made before stores knew
//!   their chain) adopts the trail's chain, once, in one transaction; the caller
//!   records that (`audit.bind`). An empty trail is given its first record first.
//! - A store bound to another chain than the trail's — or a trail with no
//!   records, or whose id is lost — is refused (`keywarden init --force` rebinds).

use std::path::Path;

use super::chain::{chain_id_of, HeadInfo, Link};
use super::error::{AuditError, AuditResult};
use super::trail::{list_files, HEAD_FILE};
use crate::error::{Error, Result};
use crate::store::Store;

/// The chain id of the trail in `dir`: the head's, else that of the first line of
/// the file holding seq 0; `None` for an empty trail (or one whose head is lost
/// and whose first file was archived).
pub fn chain_id(dir: &Path) -> AuditResult<Option<String>> {
    let head = dir.join(HEAD_FILE);
    if let Some(chain) = crate::fsguard::read_nofollow(&head)
        .ok()
        .and_then(|b| HeadInfo::decode(&b))
        .and_then(|h| h.chain)
    {
        return Ok(Some(chain));
    }
    first_chain_id(dir)
}

/// The chain id from the first line of the file that starts at seq 0.
pub(super) fn first_chain_id(dir: &Path) -> AuditResult<Option<String>> {
    let Some(first) = list_files(dir)?.into_iter().next() else {
        return Ok(None);
    };
    let is_genesis = first
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.get(6..26))
        .is_some_and(|seq| seq.bytes().all(|b| b == b'0'));
    if !is_genesis {
        return Ok(None);
    }
    let file =
        crate::fsguard::open_nofollow(&first).map_err(|e| AuditError::io(first.display(), &e))?;
    let mut line = Vec::new();
    std::io::BufRead::read_until(&mut std::io::BufReader::new(file), b'\n', &mut line)
        .map_err(|e| AuditError::io(first.display(), &e))?;
    let line = line.strip_suffix(b"\n").unwrap_or(&line);
    Ok(Link::parse(line)
        .filter(|l| l.seq == 0)
        .map(|_| chain_id_of(line)))
}

/// What [`bind`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// The store was already bound to the trail's chain.
    Same(String),
    /// The store was bound to no chain (or `replace`d) and is now bound to this one;
    /// `previous` is what it was bound to.
    Adopted {
        /// The chain now bound.
        chain: String,
        /// The chain it was bound to before (`replace` only).
        previous: Option<String>,
    },
}

/// Checks that `store` records its changes in the trail of `dir`. `establish`
/// writes (and makes readable) a first record when the trail is empty and the
/// store is unbound; `replace` rebinds a store bound to another chain.
pub fn bind(
    dir: &Path,
    store_name: &Path,
    store: &dyn Store,
    replace: bool,
    establish: impl FnOnce() -> Result<()>,
) -> Result<Binding> {
    let bound = store.audit_chain()?;
    let mut trail = super::chain_id(dir).map_err(Error::from)?;
    if trail.is_none() && (bound.is_none() || replace) {
        establish()?;
        trail = super::chain_id(dir).map_err(Error::from)?;
    }
    let refuse = |bound: &str, trail: Option<&str>| {
        Error::Config(format!(
            "the store {} records its changes in audit chain {bound}, but the trail {} {}: \
             refusing, a change recorded there would be missing from the store's trail \
             (point [audit] dir at the store's trail; `keywarden init --force` rebinds)",
            store_name.display(),
            dir.display(),
            trail.map_or_else(
                || "has no chain id (empty, or its head and first file are gone)".to_owned(),
                |t| format!("is chain {t}")
            )
        ))
    };
    let Some(trail) = trail else {
        return Err(refuse(bound.as_deref().unwrap_or("(none)"), None));
    };
    match bound {
        Some(b) if b == trail => Ok(Binding::Same(trail)),
        Some(b) if !replace => Err(refuse(&b, Some(&trail))),
        previous => {
            let now = store.bind_audit_chain(&trail, replace)?;
            if now != trail {
                // Another process bound the store to its trail meanwhile.
                return Err(refuse(&now, Some(&trail)));
            }
            Ok(Binding::Adopted {
                chain: trail,
                previous,
            })
        }
    }
}
