//! The data calls of an operation (class `OperationData` in the one function
//! table), forwarded with the application's raw arguments as they came. Used only
//! for a call Keywarden's own argument checks refused (a NULL length cell, NULL
//! input with a length): the token then answers that very call itself, so its
//! operation ends or stays active as it would directly (PKCS#11 v2.40 §5.2 and
//! §5.8-§5.13; docs/abi-conventions.md, "Operations after a refused data call").
//! Generated from the one table, so no data call can be missed.
#![allow(non_snake_case)]

use pkcs11_sys::*;

use super::Backend;

macro_rules! raw_data_calls {
    (
        v2_40 { $( $c2:ident $n2:ident ( $( $a2:ident : $t2:ty ),* ); )* }
        v3_0 { $( $c3:ident $n3:ident ( $( $a3:ident : $t3:ty ),* ); )* }
    ) => {
        impl Backend {
            $( raw_data_calls!(@one $c2 $n2 ( $( $a2 : $t2 ),* )); )*
        }
    };
    (@one OperationData $n:ident ( $( $a:ident : $t:ty ),* )) => {
        #[doc = concat!("`", stringify!($n), "` with the application's raw arguments.")]
        ///
        /// # Safety
        /// The arguments are the application's, unchanged: the C function's contract
        /// is the application's to keep, as it would be calling the token directly.
        pub unsafe fn $n(&self, $( $a : $t ),* ) -> CK_RV {
            forward!(self.$n( $( $a ),* ))
        }
    };
    (@one $c:ident $n:ident ( $( $a:ident : $t:ty ),* )) => {};
}

crate::for_each_pkcs11_function!(raw_data_calls);
