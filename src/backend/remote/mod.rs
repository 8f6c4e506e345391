//! The Keywarden service as a backend: every `Backend` method sent as one request
//! over a [`Transport`] (a Unix socket to `keywarden serve`, or in tests a loopback
//! into [`serve_request`]) and answered by the service's own backend.
//!
//! The client keeps nothing secret and follows no pointer it was not given by the
//! caller: templates and mechanism parameters are read through the `Backend`
//! contract (api.rs) by the loader's helpers, outputs written back under the same
//! rules (§5.2). A broken connection answers `CKR_DEVICE_REMOVED`
//! (`WireError::rv`), as a token pulled out during the call would.

// `CK_ULONG` travels as `u64`: `u64::from` is a no-op where `CK_ULONG` is 64 bits.
#![allow(clippy::useless_conversion)]

mod infos;
mod kinds;
mod outputs;
mod schema;
mod socket;
#[cfg(test)]
mod tests;

use pkcs11_sys::*;

pub use socket::SocketTransport;

use super::{Backend, InitOutcome, LoadedModule};
use crate::error::Result;
use crate::functions::FunctionId;
use crate::wire::codec::{Decoder, Encoder};
use crate::wire::frame::{header, open};
use crate::wire::{op, Kind, WireError, WireResult};

/// Carries one request body to the service and brings back its reply body.
pub trait Transport: Send + Sync {
    /// Sends `request` and fills `reply` with the answer.
    fn round_trip(&self, request: &[u8], reply: &mut Vec<u8>) -> WireResult<()>;
}

/// A backend on the other side of a [`Transport`].
pub struct RemoteBackend {
    transport: Box<dyn Transport>,
}

impl std::fmt::Debug for RemoteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RemoteBackend")
    }
}

impl RemoteBackend {
    /// A backend that sends every call over `transport`.
    pub fn new(transport: Box<dyn Transport>) -> RemoteBackend {
        RemoteBackend { transport }
    }

    /// A request body for `f`, its arguments to follow.
    fn request(&self, f: FunctionId) -> Encoder {
        let mut e = Encoder::new(&header(Kind::Request));
        e.u8(op::CALL).u32(u32::from(schema::function_index(f)));
        e
    }

    /// Sends `e`'s request and hands the reply's code and outputs to `accept`.
    fn exchange(
        &self,
        e: Encoder,
        accept: impl FnOnce(CK_RV, &mut Decoder<'_>) -> WireResult<()>,
    ) -> CK_RV {
        let mut reply = Vec::new();
        let done = self
            .transport
            .round_trip(&e.finish(), &mut reply)
            .and_then(|()| {
                let mut d = Decoder::new(open(&reply, Kind::Reply)?);
                if d.u8()? != op::CALL {
                    return Err(WireError::Malformed("a reply to another request"));
                }
                let rv = d.ulong()?;
                accept(rv, &mut d)?;
                d.finish()?;
                Ok(rv)
            });
        done.unwrap_or_else(|e| e.rv())
    }
}

/// The service's side of one request: decodes `request`, calls `backend` and
/// writes the reply body into `reply`.
pub fn serve_request(backend: &dyn Backend, request: &[u8], reply: &mut Vec<u8>) -> WireResult<()> {
    let mut d = Decoder::new(open(request, Kind::Request)?);
    if d.u8()? != op::CALL {
        return Err(WireError::Malformed("not a call"));
    }
    let index = u16::try_from(d.u32()?).map_err(|_| WireError::Malformed("unknown function"))?;
    let f = schema::function_at(index)?;
    let mut e = Encoder::new(&header(Kind::Reply));
    e.u8(op::CALL);
    schema::serve(backend, f, &mut d, &mut e)?;
    *reply = e.finish();
    Ok(())
}

impl Backend for RemoteBackend {
    fn has_function(&self, f: FunctionId) -> bool {
        FunctionId::ALL[..FunctionId::V2_40_COUNT].contains(&f)
    }

    fn has_v3_0(&self) -> bool {
        false
    }

    fn initialize(&self) -> Result<InitOutcome> {
        Ok(InitOutcome::Initialized)
    }

    fn finalize(&self) -> Result<()> {
        Ok(())
    }

    fn loaded_module(&self) -> Option<&LoadedModule> {
        None
    }
}
