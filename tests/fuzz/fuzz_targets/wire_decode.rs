//! Fuzzes the client–service protocol's decoders (src/wire/) with bytes as a
//! hostile peer would send them: a frame, then a template and a mechanism read from
//! its body. Any input must decode or fail with a `WireError`; a panic, a hang or
//! an allocation beyond the frame is a bug.
#![no_main]

use keywarden::wire::codec::Decoder;
use keywarden::wire::frame::read_frame;
use keywarden::wire::mechanism::OwnedMechanism;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut body = Vec::new();
    let mut input = data;
    if read_frame(&mut input, 1 << 16, &mut body).is_err() {
        body = data.to_vec();
    }
    let mut d = Decoder::new(&body);
    let _ = d.template();
    let _ = OwnedMechanism::decode(&mut d);
    let _ = d.finish();
});
