//! Creation policy (`[creation]`) and the decisions on new keys: allowed key types
//! and minimum sizes, the label rule, the classification a new key must get,
//! `CKA_SENSITIVE`/`CKA_EXTRACTABLE` and other attributes forced or refused, and the
//! copy and set-attribute rules (a copy or an edit may not loosen a key).
//!
//! Applies to `C_GenerateKey`, `C_GenerateKeyPair`, `C_CreateObject`, `C_UnwrapKey`,
//! `C_DeriveKey` and `C_CopyObject` (docs/policy.md, "Creation policy").
//! Template breaks are `CKR_TEMPLATE_INCONSISTENT`; a key type implied by a
//! disallowed key-generation mechanism is `CKR_MECHANISM_INVALID`.

//!
//! - `section`: the compiled `[creation]` section ([`CreationPolicy`]);
//! - `checks`: key type and size, the label rule, the class and family tests;
//! - `facts`: what a template states about the key it makes;
//! - `decide`: [`Policy::decide_create`](crate::policy::Policy::decide_create) and
//!   [`Policy::check_new_key`](crate::policy::Policy::check_new_key);
//! - `protection`: `CKA_SENSITIVE`, `CKA_EXTRACTABLE` and `[creation] set` on a new
//!   private or secret key;
//! - `set_attributes`: [`Policy::decide_set_attributes`](crate::policy::Policy::decide_set_attributes).

mod checks;
mod decide;
mod facts;
mod protection;
mod section;
mod set_attributes;

pub use decide::{CreateDecision, Creation, CreationKind};
pub use section::{CreationPolicy, DEFAULT_KEY_TYPES};
