//! Entry points and function lists, generated from the one function table.
//!
//! For each row the generator emits `unsafe extern "C" fn C_X(args) -> CK_RV` that runs
//! `handlers::C_X(args)` inside the [`boundary`]; an `Unclassified` row gets a body
//! that answers `CKR_FUNCTION_NOT_SUPPORTED` and touches nothing. The same rows fill
//! the immutable `CK_FUNCTION_LIST` (2.40) and `CK_FUNCTION_LIST_3_0` statics.
#![allow(non_snake_case)]

use pkcs11_sys::*;

use super::boundary::{boundary, forward_refused};
use super::handlers;
use crate::error::Error;
use crate::functions::FunctionId;

macro_rules! generate_entry_points {
    (
        v2_40 { $( $c2:ident [ $($k2:tt)* ] $n2:ident ( $( $a2:ident : $t2:ty ),* ); )* }
        v3_0 { $( $c3:ident [ $($k3:tt)* ] $n3:ident ( $( $a3:ident : $t3:ty ),* ); )* }
    ) => {
        $( generate_entry_points!(@entry $c2 $n2 ( $( $a2 : $t2 ),* )); )*
        $( generate_entry_points!(@entry $c3 $n3 ( $( $a3 : $t3 ),* )); )*

        /// The PKCS#11 v2.40 function list handed out by `C_GetFunctionList`.
        pub(super) static FUNCTION_LIST_2_40: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
            version: CK_VERSION { major: 2, minor: 40 },
            $( $n2: Some($n2), )*
        };

        /// The PKCS#11 v3.0 function list of the "PKCS 11" 3.0 interface.
        pub(super) static FUNCTION_LIST_3_0: CK_FUNCTION_LIST_3_0 = CK_FUNCTION_LIST_3_0 {
            version: CK_VERSION { major: 3, minor: 0 },
            $( $n2: Some($n2), )*
            $( $n3: Some($n3), )*
        };
    };

    (@entry Unclassified $n:ident ( $( $a:ident : $t:ty ),* )) => {
        #[doc = concat!("`", stringify!($n), "`: not classified by the policy engine, so refused.")]
        pub(super) unsafe extern "C" fn $n( $( $a : $t ),* ) -> CK_RV {
            $( let _ = $a; )*
            boundary(FunctionId::$n, || Err(Error::FunctionNotSupported))
        }
    };

    // A data call of an operation: when Keywarden's own argument checks refuse it
    // (`CKR_ARGUMENTS_BAD`), the token is handed the very same call, so that its
    // operation ends or stays active as it would directly (the raw forwarders in backend/loader.rs).
    (@entry OperationData $n:ident ( $s:ident : $st:ty $(, $a:ident : $t:ty )* )) => {
        #[doc = concat!("`", stringify!($n), "`: see `handlers::", stringify!($n), "`.")]
        pub(super) unsafe extern "C" fn $n( $s : $st $(, $a : $t )* ) -> CK_RV {
            boundary(FunctionId::$n, || {
                // SAFETY: as below.
                match unsafe { handlers::$n( $s $(, $a )* ) } {
                    Err(Error::ArgumentsBad(_)) => forward_refused(FunctionId::$n, $s, |b| {
                        // SAFETY: the application's arguments, unchanged, to the
                        // token it would otherwise have called directly.
                        unsafe { b.$n( $s $(, $a )* ) }
                    }),
                    other => other,
                }
            })
        }
    };

    (@entry $c:ident $n:ident ( $( $a:ident : $t:ty ),* )) => {
        #[doc = concat!("`", stringify!($n), "`: see `handlers::", stringify!($n), "`.")]
        pub(super) unsafe extern "C" fn $n( $( $a : $t ),* ) -> CK_RV {
            // SAFETY: the application's arguments are passed on unchanged to the handler,
            // whose contract is the C function's contract (PKCS#11 v2.40 §5, v3.0 §5).
            boundary(FunctionId::$n, || unsafe { handlers::$n( $( $a ),* ) })
        }
    };
}

crate::for_each_pkcs11_function!(generate_entry_points);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_v2_40_slot_is_filled() {
        macro_rules! all_some {
            (v2_40 { $( $c:ident [ $($k:tt)* ] $n:ident ( $( $a:ident : $t:ty ),* ); )* } v3_0 { $($rest:tt)* }) => {
                [ $( FUNCTION_LIST_2_40.$n.is_some() && FUNCTION_LIST_3_0.$n.is_some(), )* ]
            };
        }
        let filled = crate::for_each_pkcs11_function!(all_some);
        assert_eq!(filled.len(), 68);
        assert!(filled.iter().all(|b| *b));
        assert_eq!(
            (
                FUNCTION_LIST_2_40.version.major,
                FUNCTION_LIST_2_40.version.minor
            ),
            (2, 40)
        );
        assert_eq!(
            (
                FUNCTION_LIST_3_0.version.major,
                FUNCTION_LIST_3_0.version.minor
            ),
            (3, 0)
        );
    }

    #[test]
    fn unclassified_functions_are_refused_without_touching_arguments() {
        // SAFETY: the generated body ignores every argument.
        let rv = unsafe { C_MessageEncryptFinal(0) };
        assert_eq!(rv, CKR_FUNCTION_NOT_SUPPORTED);
    }
}
