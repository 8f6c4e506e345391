//! Fuzzes the template and mechanism decoders through real `CK_ATTRIBUTE` arrays and
//! `CK_MECHANISM`s built from the input (format: src/ffi/fuzzing.rs). A crash, or an
//! `Err` naming a broken invariant, is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = keywarden::fuzzing::decode_args(data) {
        panic!("decoder invariant broken: {broken}");
    }
});
