//! The information structs (`CK_INFO`, `CK_SLOT_INFO`, `CK_TOKEN_INFO`,
//! `CK_SESSION_INFO`, `CK_MECHANISM_INFO`) as outputs on the wire, field by field
//! (no struct is copied as memory: the two processes need not agree on padding).

use pkcs11_sys::*;

use super::kinds::Arg;
use crate::wire::codec::{Decoder, Encoder};
use crate::wire::{WireError, WireResult};

fn put_version(e: &mut Encoder, v: &CK_VERSION) {
    e.u8(v.major).u8(v.minor);
}

fn take_version(d: &mut Decoder<'_>) -> WireResult<CK_VERSION> {
    Ok(CK_VERSION {
        major: d.u8()?,
        minor: d.u8()?,
    })
}

fn take_array<const N: usize>(d: &mut Decoder<'_>) -> WireResult<[u8; N]> {
    d.bytes()?
        .try_into()
        .map_err(|_| WireError::Malformed("fixed-length field of another length"))
}

/// An info struct output: filled by the backend on the service, sent back whole
/// when the call succeeded.
macro_rules! info_kind {
    ($kind:ident, $t:ty { $( $f:ident: $how:ident ),* $(,)? }) => {
        #[doc = concat!("A `", stringify!($t), "` output.")]
        pub struct $kind;

        impl Arg for $kind {
            type Form<'x> = &'x mut $t;
            type Held<'s> = $t;
            fn put(_c: &&mut $t, _e: &mut Encoder) -> WireResult<()> {
                Ok(())
            }
            fn take(_d: &mut Decoder<'_>) -> WireResult<$t> {
                Ok(<$t>::default())
            }
            fn form(h: &mut $t) -> &mut $t {
                h
            }
            fn answer(h: &$t, rv: CK_RV, e: &mut Encoder) -> WireResult<()> {
                if rv != CKR_OK {
                    return Ok(());
                }
                $( info_kind!(@put $how e, h.$f); )*
                Ok(())
            }
            fn accept(c: &mut &mut $t, rv: CK_RV, d: &mut Decoder<'_>) -> WireResult<()> {
                if rv != CKR_OK {
                    return Ok(());
                }
                let mut v = <$t>::default();
                $( v.$f = info_kind!(@take $how d); )*
                **c = v;
                Ok(())
            }
        }
    };
    (@put ulong $e:ident, $v:expr) => { $e.ulong($v); };
    (@put bytes $e:ident, $v:expr) => { $e.bytes(&$v)?; };
    (@put version $e:ident, $v:expr) => { put_version($e, &$v); };
    (@take ulong $d:ident) => { $d.ulong()? };
    (@take bytes $d:ident) => { take_array($d)? };
    (@take version $d:ident) => { take_version($d)? };
}

info_kind!(
    Info,
    CK_INFO {
        cryptokiVersion: version,
        manufacturerID: bytes,
        flags: ulong,
        libraryDescription: bytes,
        libraryVersion: version,
    }
);

info_kind!(
    SlotInfo,
    CK_SLOT_INFO {
        slotDescription: bytes,
        manufacturerID: bytes,
        flags: ulong,
        hardwareVersion: version,
        firmwareVersion: version,
    }
);

info_kind!(
    TokenInfo,
    CK_TOKEN_INFO {
        label: bytes,
        manufacturerID: bytes,
        model: bytes,
        serialNumber: bytes,
        flags: ulong,
        ulMaxSessionCount: ulong,
        ulSessionCount: ulong,
        ulMaxRwSessionCount: ulong,
        ulRwSessionCount: ulong,
        ulMaxPinLen: ulong,
        ulMinPinLen: ulong,
        ulTotalPublicMemory: ulong,
        ulFreePublicMemory: ulong,
        ulTotalPrivateMemory: ulong,
        ulFreePrivateMemory: ulong,
        hardwareVersion: version,
        firmwareVersion: version,
        utcTime: bytes,
    }
);

info_kind!(
    SessionInfo,
    CK_SESSION_INFO {
        slotID: ulong,
        state: ulong,
        flags: ulong,
        ulDeviceError: ulong,
    }
);

info_kind!(
    MechanismInfo,
    CK_MECHANISM_INFO {
        ulMinKeySize: ulong,
        ulMaxKeySize: ulong,
        flags: ulong,
    }
);
