//! Typed identities and policy classes of the PKCS#11 functions, generated from the
//! one table in `functions_table.rs`.

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

macro_rules! define_function_ids {
    (
        v2_40 { $( $c2:ident $n2:ident ( $( $a2:ident : $t2:ty ),* ); )* }
        v3_0 { $( $c3:ident $n3:ident ( $( $a3:ident : $t3:ty ),* ); )* }
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
            pub const fn class(self) -> FnClass {
                match self { $( FunctionId::$n2 => FnClass::$c2, )* $( FunctionId::$n3 => FnClass::$c3, )* }
            }
        }
    };
}

crate::for_each_pkcs11_function!(define_function_ids);

#[cfg(test)]
mod tests {
    use super::*;

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
