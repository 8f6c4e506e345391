//! Where the backend writes a data call's output.
//!
//! In `buffered` audit mode (and for §5.2 size queries) the backend writes into
//! the caller's own buffer: no copy on the hot path (benches/README.md).
//!
//! In `required` mode a call whose record cannot be written fails (fail closed,
//! docs/audit.md), and its output must not reach the caller either: a refused
//! `C_Sign` must not leave a valid signature in the caller's buffer. So the
//! backend writes into Keywarden's own buffer, which is copied to the caller's
//! only once the call's record is durable, and zeroised in every case
//! (docs/abi-conventions.md, "Variable-length output"). A creating call's new
//! handles are likewise withheld.

use pkcs11_sys::*;
use zeroize::Zeroizing;

use crate::abi::OutBuf;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::gateway::{Call, Gateway, Io};

/// The first size of Keywarden's buffer: a caller's buffer may be far larger
/// than the output (a capacity of 2^63 included), so a larger output is asked
/// for again at the size the backend names (§5.2: `CKR_BUFFER_TOO_SMALL` leaves
/// the operation active).
const FIRST: usize = 64 * 1024;

/// A data call (`gateway::Gateway::call_io`) whose output goes to `out`;
/// `forward` performs the backend call into the `OutBuf` it is given, and may be
/// called twice (once more at the size the backend asked for).
pub(super) fn data_call(
    gw: &Gateway,
    call: Call,
    io: Io,
    mut out: OutBuf<'_>,
    mut forward: impl FnMut(&dyn Backend, OutBuf<'_>) -> CK_RV,
) -> Result<()> {
    if out.is_size_query() || !gw.holds_output(call.function) {
        return gw.call_io(call, io, |b| {
            let rv = forward(b, out.reborrow());
            (rv, out.written_len())
        });
    }
    let (buf, len) = out.parts();
    let Some(buf) = buf else {
        return Err(Error::Internal("output buffer vanished".into()));
    };
    let capacity = buf.len();
    let mut own = Zeroizing::new(vec![0u8; capacity.min(FIRST)]);
    let mut n = crate::abi::to_ulong(own.len())?;
    let result = gw.call_io(call, io, |b| {
        let mut rv = forward(b, OutBuf::new(Some(&mut own[..]), &mut n));
        let needed = usize::try_from(n).unwrap_or(usize::MAX);
        if rv == CKR_BUFFER_TOO_SMALL && needed > own.len() && needed <= capacity {
            own.resize(needed, 0);
            rv = forward(b, OutBuf::new(Some(&mut own[..]), &mut n));
        }
        (rv, n)
    });
    match &result {
        // No record, no output: the caller's buffer and length stay as they were.
        Err(Error::Audit(_)) => {}
        Ok(()) => {
            let written = usize::try_from(n).unwrap_or(usize::MAX);
            match (buf.get_mut(..written), own.get(..written)) {
                (Some(dst), Some(src)) => dst.copy_from_slice(src),
                _ => return Err(Error::Internal("backend output beyond its buffer".into())),
            }
            *len = n;
        }
        // The token's error and the length it set (the needed size of §5.2).
        Err(_) => *len = n,
    }
    result
}

/// A creating call's new handles: in `required` mode, when the call's record could
/// not be written none reaches the caller. The objects themselves stay, as every
/// change whose record failed does (docs/audit.md, "Required mode fails closed").
pub(super) fn handles_if_recorded<const N: usize>(
    result: Result<()>,
    handles: [&mut CK_OBJECT_HANDLE; N],
) -> Result<()> {
    if let Err(Error::Audit(_)) = &result {
        for h in handles {
            *h = CK_INVALID_HANDLE;
        }
    }
    result
}
