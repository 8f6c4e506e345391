//! The store's typed records: managed keys, their versions and states, usage
//! counters, named identities.
//!
//! Times are `UnixTime`: seconds since the epoch, UTC, always passed in by the caller.
//! The store never reads the clock, so lifecycle code can run with an injected clock.

use std::fmt;
use std::str::FromStr;

use zeroize::Zeroize;

use super::StoreError;

/// Seconds since 1970-01-01 UTC.
pub type UnixTime = i64;

/// The calendar date of a Unix time; it lives with the clocks, below the store,
/// and is re-exported here for the store's users.
pub use crate::coarse_clock::civil_date;

/// The current time as [`UnixTime`] (for callers without an injected clock).
pub fn now() -> UnixTime {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A managed key's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub i64);

/// A key version's row id (stable for the life of the store; versions are never
/// deleted, a destroyed one stays as a tombstone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionId(pub i64);

/// Declares a string-backed enum with `as_str`, `Display`, `FromStr` and `ALL`, so
/// the database, the CLI and JSON all use one spelling.
macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $v,)+ }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v,)+];
            /// The spelling used in the store, the CLI and JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)+ }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $name {
            type Err = StoreError;
            fn from_str(s: &str) -> Result<Self, StoreError> {
                match s {
                    $($s => Ok($name::$v),)+
                    other => Err(StoreError::Invalid(format!(
                        concat!("unknown ", stringify!($name), " {:?}"), other))),
                }
            }
        }
    };
}

str_enum! {
    /// NIST SP 800-57 Part 1 key states.
    KeyState {
        /// Generated, not yet usable.
        PreActivation = "pre-activation",
        /// Usable per policy (at most one version of a key is active).
        Active = "active",
        /// Temporarily unusable; may return to active.
        Suspended = "suspended",
        /// Superseded: processing side only (verify, decrypt, unwrap).
        Deactivated = "deactivated",
        /// Suspected or known compromised: no use.
        Compromised = "compromised",
        /// Objects removed from the token; the record is a tombstone.
        Destroyed = "destroyed",
    }
}

impl KeyState {
    /// Whether SP 800-57 Part 1 (rev. 5, §7) allows going from `self` to `to`.
    /// The store enforces this on every state change; staying put is not a change.
    pub fn can_become(self, to: KeyState) -> bool {
        use KeyState::*;
        matches!(
            (self, to),
            (PreActivation, Active | Compromised | Destroyed)
                | (Active, Suspended | Deactivated | Compromised)
                | (Suspended, Active | Deactivated | Compromised)
                | (Deactivated, Compromised | Destroyed)
                | (Compromised, Destroyed)
        )
    }
}

str_enum! {
    /// Classification levels (MAC), lowest first so that `Ord` compares clearance.
    Classification {
        /// Low.
        Low = "low",
        /// Low-Medium.
        LowMedium = "low-medium",
        /// Medium.
        Medium = "medium",
        /// Medium-High.
        MediumHigh = "medium-high",
        /// High.
        High = "high",
    }
}

/// A key to put under management.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// `CKA_LABEL` the applications use. Not unique: applications may create several
    /// keys under one label, and each stays a key of its own.
    pub label: String,
    /// Owner role (DAC), if any.
    pub owner: Option<String>,
    /// Classification (MAC), if assigned.
    pub classification: Option<Classification>,
    /// Name of the policy rotation rule the key follows, if any.
    pub rotation_rule: Option<String>,
}

/// A managed key: a label with versions behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedKey {
    /// Row id.
    pub id: KeyId,
    /// `CKA_LABEL`.
    pub label: String,
    /// Owner role.
    pub owner: Option<String>,
    /// Classification.
    pub classification: Option<Classification>,
    /// Rotation rule name.
    pub rotation_rule: Option<String>,
    /// When it was registered.
    pub created_at: UnixTime,
}

/// The token objects of a new version (one `CKA_ID` on one token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion {
    /// Serial number of the token holding the objects (`CK_TOKEN_INFO.serialNumber`).
    pub token_serial: String,
    /// `CKA_ID` shared by the version's objects (non-empty).
    pub cka_id: Vec<u8>,
    /// Key type, spelled as its `CKK_*` name (e.g. `CKK_EC`, `CKK_RSA`, `CKK_AES`).
    pub algorithm: String,
    /// Size in bits (RSA modulus, AES key), when the type has one.
    pub size_bits: Option<u32>,
    /// Curve name or OID (EC, EdDSA), when the type has one.
    pub curve: Option<String>,
}

/// A rotation (or registration) in flight: written before its token objects are
/// generated, cleared with the commit of their version. What `lifecycle::reconcile`
/// may remove if the commit never came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRotation {
    /// Serial number of the token the objects are made on.
    pub token_serial: String,
    /// The new objects' `CKA_ID`.
    pub cka_id: Vec<u8>,
    /// Their `CKA_LABEL`.
    pub label: String,
    /// When the intent was written.
    pub started_at: UnixTime,
}

/// Usage counters of one version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Cryptographic operations performed.
    pub ops: u64,
    /// Bytes processed.
    pub bytes: u64,
    /// Time of the last use, if any.
    pub last_use_at: Option<UnixTime>,
}

/// One increment of a version's counters (usually many operations summed in memory;
/// see [`super::UsageAccumulator`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageDelta {
    /// The version used.
    pub version: VersionId,
    /// Operations to add.
    pub ops: u64,
    /// Bytes to add.
    pub bytes: u64,
    /// Latest use among them.
    pub last_use_at: UnixTime,
}

/// A version of a managed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVersion {
    /// Row id.
    pub id: VersionId,
    /// The key it belongs to.
    pub key_id: KeyId,
    /// 1, 2, 3 ... within the key.
    pub version: u32,
    /// Token serial number.
    pub token_serial: String,
    /// `CKA_ID` of its objects.
    pub cka_id: Vec<u8>,
    /// `CKK_*` name.
    pub algorithm: String,
    /// Size in bits.
    pub size_bits: Option<u32>,
    /// Curve.
    pub curve: Option<String>,
    /// Lifecycle state.
    pub state: KeyState,
    /// Reason given with the last state change.
    pub reason: Option<String>,
    /// Registered.
    pub created_at: UnixTime,
    /// Last state change.
    pub state_changed_at: UnixTime,
    /// First activation.
    pub activated_at: Option<UnixTime>,
    /// Last suspension (cleared on resume).
    pub suspended_at: Option<UnixTime>,
    /// Deactivation.
    pub deactivated_at: Option<UnixTime>,
    /// Compromise.
    pub compromised_at: Option<UnixTime>,
    /// Destruction.
    pub destroyed_at: Option<UnixTime>,
    /// Counters.
    pub usage: Usage,
}

/// The outcome of a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The version that was active before, now deactivated (none if there was none).
    pub previous: Option<KeyVersion>,
    /// The new active version.
    pub current: KeyVersion,
}

/// Everything the hot path caches, read in one transaction so `change_seq` matches
/// the rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The change counter the rows correspond to.
    pub change_seq: u64,
    /// Every managed key.
    pub keys: Vec<ManagedKey>,
    /// Every version (tombstones included).
    pub versions: Vec<KeyVersion>,
}

/// A named identity as shown to administrators (no hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Login name (the part before ':' in a named PIN).
    pub name: String,
    /// Roles, sorted.
    pub roles: Vec<String>,
    /// When it was added.
    pub created_at: UnixTime,
    /// A disabled identity never verifies.
    pub disabled: bool,
}

/// An argon2id PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
///
/// Not a secret, but an offline-guessing target: `Debug` never shows it, and it is
/// wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct PhcHash(String);

impl PhcHash {
    /// Wraps a PHC string read from a store.
    pub fn new(phc: String) -> PhcHash {
        PhcHash(phc)
    }

    /// The PHC string, for storing.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PhcHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhcHash(<redacted>)")
    }
}

impl Drop for PhcHash {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip() {
        for s in KeyState::ALL {
            assert_eq!(s.as_str().parse::<KeyState>().unwrap(), *s);
        }
        for c in Classification::ALL {
            assert_eq!(c.as_str().parse::<Classification>().unwrap(), *c);
        }
        assert!("retired".parse::<KeyState>().is_err());
        assert!(Classification::High > Classification::MediumHigh);
        assert!(Classification::Low < Classification::LowMedium);
    }

    #[test]
    fn transitions_follow_sp800_57() {
        use KeyState::*;
        assert!(PreActivation.can_become(Active));
        assert!(Active.can_become(Deactivated));
        assert!(Suspended.can_become(Active));
        assert!(Deactivated.can_become(Destroyed));
        assert!(!Deactivated.can_become(Active), "no reactivation");
        assert!(!Compromised.can_become(Active));
        assert!(!Active.can_become(Destroyed), "deactivate first");
        for s in KeyState::ALL {
            assert!(!Destroyed.can_become(*s), "destroyed is terminal");
            assert!(!s.can_become(*s), "staying put is not a transition");
        }
    }

    #[test]
    fn phc_debug_is_redacted() {
        let h = PhcHash::new("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into());
        assert_eq!(format!("{h:?}"), "PhcHash(<redacted>)");
    }
}
