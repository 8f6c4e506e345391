//! The protocol between Keywarden's client module and the Keywarden service: frames
//! on a Unix stream socket and the bounded codec of what they carry.
//!
//! A frame is a little-endian `u32` body length and the body; the body starts with
//! [`VERSION`] and a kind byte. Everything inside is little-endian; a PKCS#11
//! `CK_ULONG` travels as `u64` whatever the platform's width. Every length and
//! count is checked against what is left of the frame (and against [`MAX_COUNT`]
//! for arrays) before anything is allocated or sliced, so a hostile peer can make
//! the reader allocate at most one frame of the size it allows and never loop
//! beyond the bytes it sent. Mechanism parameters travel byte-exact, with the
//! buffers their pointers name carried after the struct (`mechanism`).
//!
//! This module only encodes and decodes; it never follows a pointer.

pub mod codec;
pub mod frame;
pub mod mechanism;
pub mod template;

use pkcs11_sys::*;

/// The protocol version this build speaks; a peer with another is refused.
pub const VERSION: u8 = 1;

/// Most entries an array on the wire may have (attributes of a template, handles,
/// slots, mechanisms): the same bound the C ABI front end puts on a template.
pub const MAX_COUNT: usize = 4096;

/// The operation byte after the header of a request (and of its reply): what the
/// message is.
pub mod op {
    /// The `Hello` exchange (`service::hello`): versions, and who the service
    /// took the peer for.
    pub const HELLO: u8 = 0;
    /// A PKCS#11 call (`backend::remote`): the function's index and its arguments.
    pub const CALL: u8 = 1;
    /// A reply only: the service refused the request and closes the connection
    /// (`service::ProtocolError`).
    pub const PROTOCOL_ERROR: u8 = 0xFF;
}

/// Frame kinds (the body's second byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A PKCS#11 call from the client.
    Request = 1,
    /// The service's answer to the last request on the connection.
    Reply = 2,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Request),
            2 => Some(Kind::Reply),
            _ => None,
        }
    }
}

/// Why bytes from the peer are not a valid message. Never carries their content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The connection ended, cleanly between frames.
    #[error("the peer closed the connection")]
    Closed,
    /// The connection ended inside a frame.
    #[error("the connection ended inside a frame")]
    Truncated,
    /// A frame longer than the reader allows.
    #[error("a frame of {len} bytes is over the limit of {max}")]
    TooLong {
        /// The length the peer announced.
        len: u64,
        /// The reader's limit.
        max: u64,
    },
    /// A field runs past the end of the frame, or a count is over [`MAX_COUNT`].
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// A mechanism parameter that cannot be carried (`mechanism`).
    #[error("a mechanism parameter that may hold pointers cannot be carried")]
    Param,
    /// Another protocol version.
    #[error("protocol version {0} is not {VERSION}")]
    Version(u8),
    /// Bytes left over after the message.
    #[error("{0} bytes after the end of the message")]
    Trailing(usize),
    /// The socket failed.
    #[error("socket: {0}")]
    Io(String),
}

impl WireError {
    /// The code a call answers when its message could not be carried: a request
    /// the service cannot read was malformed by the client (`CKR_ARGUMENTS_BAD`);
    /// a broken connection is the token gone (`CKR_DEVICE_REMOVED`, PKCS#11 v2.40
    /// §5.1: the token was removed "during the execution of the function").
    pub fn rv(&self) -> CK_RV {
        match self {
            WireError::Closed | WireError::Truncated | WireError::Io(_) => CKR_DEVICE_REMOVED,
            WireError::Param => CKR_MECHANISM_PARAM_INVALID,
            WireError::TooLong { .. }
            | WireError::Malformed(_)
            | WireError::Version(_)
            | WireError::Trailing(_) => CKR_ARGUMENTS_BAD,
        }
    }
}

/// Result of the wire codec.
pub type WireResult<T> = std::result::Result<T, WireError>;
