//! Typed identities of the PKCS#11 functions and what is known about each, generated
//! from the one table in `functions_table.rs`: its policy class, how it is recorded,
//! how it is decided, and what it does to an operation or a session. The policy
//! engine reads its operation names from the same table (`policy::Op::for_function`).

/// What kind of decision a function needs. Every function in the table has one;
/// the policy engine decides per class, and `Unclassified` is always refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FnClass {
    /// Library bookkeeping: initialise, finalise, function lists, slot events.
    Library,
    /// Slot, token and mechanism information.
    Slot,
    /// Token administration: `C_InitToken`, `C_InitPIN`, `C_SetPIN`.
    Admin,
    /// Session management and legacy parallel-function calls.
    Session,
    /// Login and logout.
    Login,
    /// Object management: create, copy, destroy, attributes.
    Object,
    /// Object search.
    Search,
    /// The `*Init` of an operation that uses a key (the decision point).
    KeyUse,
    /// `C_DigestInit`: an operation without a key.
    Digest,
    /// The data calls of an operation already decided at its `*Init`.
    OperationData,
    /// Key generation, wrapping, unwrapping and derivation.
    KeyManagement,
    /// Random-number generation and seeding.
    Random,
    /// Not yet classified: refused with `CKR_FUNCTION_NOT_SUPPORTED`.
    Unclassified,
}

/// How a function is recorded in the audit trail (docs/audit.md, "What the gateway
/// records").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// Not recorded unless refused: library, slot and session information,
    /// search, attribute reads, random numbers. Find-by-label is a hot path.
    Quiet,
    /// One record after the forward, with the backend's result (failures too).
    Call,
    /// A `*Init`: the operation is recorded at its end; a failed one at once.
    Init,
    /// A data call of an operation under way (summarised by `audit::OpTracker`).
    Data,
    /// Opening and closing sessions: recorded like [`RecordKind::Call`] at level
    /// `all`, only when they fail at level `security`.
    Session,
}

/// What the policy decides before a function is forwarded, from the call's
/// descriptor alone (docs/policy.md, "Enforcement points").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decide {
    /// Nothing before the forward (or nothing at all).
    Nothing,
    /// The function's operation on the key or object it names (`Call::object`).
    Key,
    /// `C_WrapKey`: the wrapping key (`wrap`) and the key it wraps (`export`).
    Keys,
    /// An administrative operation of the session's login (`C_InitPIN`, `C_SetPIN`).
    Session,
    /// An administrative operation of the slot's login (`C_InitToken`).
    Slot,
    /// Decided with the decoded template(s), on the creating or editing path.
    Template,
}

/// The operations a session can have under way (at most one of each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// `C_EncryptInit` …
    Encrypt,
    /// `C_DecryptInit` …
    Decrypt,
    /// `C_DigestInit` …
    Digest,
    /// `C_SignInit` …
    Sign,
    /// `C_VerifyInit` …
    Verify,
    /// `C_SignRecoverInit` …
    SignRecover,
    /// `C_VerifyRecoverInit` …
    VerifyRecover,
}

impl OpKind {
    /// Each operation with its `C_SessionCancel` flag (v3.0 §5.6).
    pub const CANCEL_FLAGS: [(pkcs11_sys::CK_FLAGS, OpKind); 7] = [
        (pkcs11_sys::CKF_ENCRYPT, OpKind::Encrypt),
        (pkcs11_sys::CKF_DECRYPT, OpKind::Decrypt),
        (pkcs11_sys::CKF_DIGEST, OpKind::Digest),
        (pkcs11_sys::CKF_SIGN, OpKind::Sign),
        (pkcs11_sys::CKF_SIGN_RECOVER, OpKind::SignRecover),
        (pkcs11_sys::CKF_VERIFY, OpKind::Verify),
        (pkcs11_sys::CKF_VERIFY_RECOVER, OpKind::VerifyRecover),
    ];

    /// The operation a `*Init` starts.
    pub const fn from_init(f: FunctionId) -> Option<OpKind> {
        match f.effect() {
            Effect::Starts(k) => Some(k),
            _ => None,
        }
    }
}

/// Where a data call leaves its operation (v2.40 §5.2 and each function's text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// An `*Update`: the operation goes on (unless the call fails).
    Update,
    /// A single-part call or a `*Final`: the operation ends (unless it was a
    /// length query).
    Last,
}

/// What a function does to the operations and sessions it touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// None of the below.
    None,
    /// A `*Init`: starts this operation.
    Starts(OpKind),
    /// A data call: its phase and, per operation it feeds, whether that operation
    /// counts the call's input (`true`) or its output (`false`) as its input bytes.
    Feeds(Phase, &'static [(OpKind, bool)]),
    /// `C_CloseSession`: the session's operations end.
    EndsSession,
    /// `C_CloseAllSessions`: every operation of the slot ends.
    EndsSlot,
    /// `C_SessionCancel`: the operations its flags name end.
    Cancels,
}

/// The table's `effect` column as an [`Effect`].
macro_rules! effect {
    (-) => { Effect::None };
    (Starts($k:ident)) => { Effect::Starts(OpKind::$k) };
    (Update($($f:tt)*)) => { Effect::Feeds(Phase::Update, feeds!($($f)*)) };
    (Last($($f:tt)*)) => { Effect::Feeds(Phase::Last, feeds!($($f)*)) };
    ($other:ident) => { Effect::$other };
}

/// The operations a data call feeds: `A`, `A B` (both count the input), or
/// `A out B` (B consumes what A produced: its input is the call's output).
macro_rules! feeds {
    ($a:ident) => {
        &[(OpKind::$a, true)]
    };
    ($a:ident $b:ident) => {
        &[(OpKind::$a, true), (OpKind::$b, true)]
    };
    ($a:ident out $b:ident) => {
        &[(OpKind::$a, true), (OpKind::$b, false)]
    };
}

/// The table's `decide` column as a [`Decide`].
macro_rules! decide {
    (-) => {
        Decide::Nothing
    };
    ($d:ident) => {
        Decide::$d
    };
}

macro_rules! define_function_ids {
    (
        v2_40 { $( $c2:ident [ $r2:ident $o2:tt $d2:tt $($e2:tt)+ ] $n2:ident ( $( $a2:ident : $t2:ty ),* ); )* }
        v3_0 { $( $c3:ident [ $r3:ident $o3:tt $d3:tt $($e3:tt)+ ] $n3:ident ( $( $a3:ident : $t3:ty ),* ); )* }
    ) => {
        /// Every PKCS#11 function Keywarden exposes, named as in the specification.
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FunctionId { $( $n2, )* $( $n3, )* }

        impl FunctionId {
            /// All functions, in function-list order (2.40 first, then the 3.0 additions).
            pub const ALL: &'static [FunctionId] = &[ $( FunctionId::$n2, )* $( FunctionId::$n3, )* ];
            /// Number of functions in the PKCS#11 v2.40 `CK_FUNCTION_LIST`.
            pub const V2_40_COUNT: usize = [ $( stringify!($n2), )* ].len();

            /// The function's specification name, e.g. `"C_Sign"`.
            pub const fn name(self) -> &'static str {
                match self { $( FunctionId::$n2 => stringify!($n2), )* $( FunctionId::$n3 => stringify!($n3), )* }
            }

            /// The code a token answers for an invalid handle in the call's
            /// object argument (`Call::object`): the key-specific codes of
            /// v2.40 §5.14 for wrap and unwrap, `CKR_KEY_HANDLE_INVALID` for a
            /// keyed operation, `CKR_OBJECT_HANDLE_INVALID` otherwise (object
            /// functions, and `C_DeriveKey`'s base key as SoftHSM answers it).
            pub const fn invalid_object_rv(self) -> pkcs11_sys::CK_RV {
                match (self, self.class()) {
                    (FunctionId::C_WrapKey, _) => pkcs11_sys::CKR_WRAPPING_KEY_HANDLE_INVALID,
                    (FunctionId::C_UnwrapKey, _) => pkcs11_sys::CKR_UNWRAPPING_KEY_HANDLE_INVALID,
                    (_, FnClass::KeyUse) => pkcs11_sys::CKR_KEY_HANDLE_INVALID,
                    _ => pkcs11_sys::CKR_OBJECT_HANDLE_INVALID,
                }
            }

            /// The function's policy class.
            #[inline]
            pub const fn class(self) -> FnClass {
                match self { $( FunctionId::$n2 => FnClass::$c2, )* $( FunctionId::$n3 => FnClass::$c3, )* }
            }

            /// How the function is recorded.
            #[inline]
            pub const fn record_kind(self) -> RecordKind {
                match self { $( FunctionId::$n2 => RecordKind::$r2, )* $( FunctionId::$n3 => RecordKind::$r3, )* }
            }

            /// What the policy decides before the function is forwarded.
            pub const fn decide(self) -> Decide {
                match self { $( FunctionId::$n2 => decide!($d2), )* $( FunctionId::$n3 => decide!($d3), )* }
            }

            /// What the function does to operations and sessions.
            #[inline]
            pub const fn effect(self) -> Effect {
                match self { $( FunctionId::$n2 => effect!($($e2)+), )* $( FunctionId::$n3 => effect!($($e3)+), )* }
            }
        }
    };
}

crate::for_each_pkcs11_function!(define_function_ids);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_discriminant_order() {
        // Tables indexed by `f as usize` are built from `ALL`.
        for (i, f) in FunctionId::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i, "{}", f.name());
        }
    }

    #[test]
    fn v2_40_has_68_functions_and_v3_0_adds_24() {
        assert_eq!(FunctionId::V2_40_COUNT, 68);
        assert_eq!(FunctionId::ALL.len(), 68 + 24);
    }

    #[test]
    fn only_message_functions_are_unclassified() {
        let unclassified: Vec<_> = FunctionId::ALL
            .iter()
            .filter(|f| f.class() == FnClass::Unclassified)
            .map(|f| f.name())
            .collect();
        assert_eq!(unclassified.len(), 20, "{unclassified:?}");
        assert!(unclassified.iter().all(|n| n.contains("Message")));
    }

    #[test]
    fn classes_of_decision_points() {
        assert_eq!(FunctionId::C_SignInit.class(), FnClass::KeyUse);
        assert_eq!(FunctionId::C_Sign.class(), FnClass::OperationData);
        assert_eq!(FunctionId::C_InitToken.class(), FnClass::Admin);
        assert_eq!(FunctionId::C_FindObjectsInit.class(), FnClass::Search);
    }
}
