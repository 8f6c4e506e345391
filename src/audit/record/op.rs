//! The record of one slot operation (`kind: "op"`) and the key a creating call made.

use std::time::Duration;

use pkcs11_sys::{CK_MECHANISM_TYPE, CK_RV};
use serde::Serialize;

use super::{Decision, KeyRef, Mechanism, Rv};
use crate::abi::MechanismSummary;
use crate::call::Call;
use crate::functions::FunctionId;

/// The key a creating call made (see [`OpEvent::new_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewKey {
    /// Its label.
    #[serde(
        rename = "new_key_label",
        serialize_with = "super::shared_str",
        skip_serializing_if = "Option::is_none"
    )]
    pub label: Option<std::sync::Arc<str>>,
    /// Its `CKA_ID`, hex.
    #[serde(
        rename = "new_key_id",
        serialize_with = "super::hex_shared",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<std::sync::Arc<[u8]>>,
    /// Its managed version (enforce mode, when the call registered it).
    #[serde(rename = "new_key_version", skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// One slot operation (`kind: "op"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpEvent {
    /// The call that ended the operation (`C_Sign`, `C_SignFinal`, `C_Login`, …).
    #[serde(serialize_with = "super::function_name")]
    pub function: FunctionId,
    /// The named identity that made the call, when identities are in use.
    #[serde(serialize_with = "super::shared_str")]
    pub identity: Option<std::sync::Arc<str>>,
    /// That identity's role.
    #[serde(serialize_with = "super::shared_str")]
    pub role: Option<std::sync::Arc<str>>,
    /// Slot ID.
    pub slot: Option<u64>,
    /// Token serial number (shared: the same for every record of a slot).
    #[serde(serialize_with = "super::shared_str")]
    pub token: Option<std::sync::Arc<str>>,
    /// Session handle.
    pub session: Option<u64>,
    /// The mechanism and its parameter summary (`MechanismSummary` text).
    pub mechanism: Option<Mechanism>,
    /// Key label.
    #[serde(serialize_with = "super::shared_str")]
    pub key_label: Option<std::sync::Arc<str>>,
    /// Key `CKA_ID`, hex.
    #[serde(serialize_with = "super::hex_shared")]
    pub key_id: Option<std::sync::Arc<[u8]>>,
    /// Key lifecycle version.
    pub key_version: Option<u32>,
    /// Allowed or refused by Keywarden.
    pub decision: Decision,
    /// The rule that decided, when the policy names one.
    #[serde(serialize_with = "super::shared_str")]
    pub rule: Option<std::sync::Arc<str>>,
    /// The result the application got.
    pub rv: Rv,
    /// Input bytes over the whole operation.
    pub bytes_in: u64,
    /// Output bytes over the whole operation.
    pub bytes_out: u64,
    /// From the start of the `*Init` (or the call) to the end of its last call.
    pub duration_us: u64,
    /// The key a successful creating call made (`C_GenerateKey`, the private key
    /// of `C_GenerateKeyPair`, `C_CreateObject`, `C_CopyObject`, `C_UnwrapKey`,
    /// `C_DeriveKey`): `new_key_label`, `new_key_id`, `new_key_version`, each
    /// written only when known — absent, not `null`, in every other record. Boxed:
    /// it is rare, and every record is moved several times on the caller's thread
    /// and through the writer's queue.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub new_key: Option<Box<NewKey>>,
}

impl OpEvent {
    /// An allowed call with result `rv` and nothing else known yet.
    pub fn new(function: FunctionId, rv: CK_RV) -> OpEvent {
        OpEvent {
            function,
            identity: None,
            role: None,
            slot: None,
            token: None,
            session: None,
            mechanism: None,
            key_label: None,
            key_id: None,
            key_version: None,
            decision: Decision::Allow,
            rule: None,
            rv: Rv(rv),
            bytes_in: 0,
            bytes_out: 0,
            duration_us: 0,
            new_key: None,
        }
    }

    /// What the gateway's call descriptor says (function, slot, session, mechanism
    /// type). The descriptor holds no data, so neither can the record.
    // CK_ULONG is u64 here but 32 bits wide on other targets.
    #[allow(clippy::useless_conversion)]
    pub fn from_call(call: &Call, rv: CK_RV) -> OpEvent {
        let mut op = OpEvent::new(call.function, rv);
        op.slot = call.slot.map(u64::from);
        op.session = call.session.map(u64::from);
        op.mechanism = call.mechanism.map(Mechanism::Type);
        op
    }

    /// Sets the mechanism from its decoded summary (types and lengths only).
    pub fn with_mechanism(mut self, m: &MechanismSummary) -> OpEvent {
        self.set_mechanism(m);
        self
    }

    /// Sets the mechanism in place (the hot path: no move of the record).
    #[inline]
    pub fn set_mechanism(&mut self, m: &MechanismSummary) {
        self.mechanism = Some(Mechanism::Summary(*m));
    }

    /// Sets the mechanism from its type alone.
    pub fn with_mechanism_type(mut self, m: CK_MECHANISM_TYPE) -> OpEvent {
        self.mechanism = Some(Mechanism::Type(m));
        self
    }

    /// Names the key.
    pub fn with_key(mut self, key: KeyRef) -> OpEvent {
        self.set_key(key);
        self
    }

    /// Names the key in place.
    #[inline]
    pub fn set_key(&mut self, key: KeyRef) {
        self.key_label = key.label;
        self.key_id = key.id;
        self.key_version = key.version;
    }

    /// Names the key the call created.
    pub fn with_new_key(mut self, key: KeyRef) -> OpEvent {
        self.set_new_key(key);
        self
    }

    /// Names the key the call created, in place.
    pub fn set_new_key(&mut self, key: KeyRef) {
        self.new_key = Some(Box::new(NewKey {
            label: key.label,
            id: key.id,
            version: key.version,
        }));
    }

    /// Names the caller.
    pub fn with_identity(
        mut self,
        name: impl Into<std::sync::Arc<str>>,
        role: Option<std::sync::Arc<str>>,
    ) -> OpEvent {
        self.set_identity(name, role);
        self
    }

    /// Names the caller, in place.
    #[inline]
    pub fn set_identity(
        &mut self,
        name: impl Into<std::sync::Arc<str>>,
        role: Option<std::sync::Arc<str>>,
    ) {
        self.identity = Some(name.into());
        self.role = role;
    }

    /// Records a refusal by `rule`.
    pub fn denied(mut self, rule: impl Into<std::sync::Arc<str>>) -> OpEvent {
        self.decision = Decision::Deny;
        self.rule = Some(rule.into());
        self
    }

    /// Sets the operation's duration.
    pub fn with_duration(mut self, d: Duration) -> OpEvent {
        self.set_duration(d);
        self
    }

    /// Sets the duration in place.
    pub fn set_duration(&mut self, d: Duration) {
        self.duration_us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    }
}
