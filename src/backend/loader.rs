//! Loading the real module defensively.
//!
//! - `dlopen` with `RTLD_NOW | RTLD_LOCAL`: unresolved symbols fail now, not mid-call,
//!   and the backend's `C_*` symbols never interpose anyone else's.
//! - Refuse to load Keywarden itself, by an exported marker symbol rather than by
//!   file name: a symlink or a copy of `libkeywarden.so` can be called anything.
//! - Ask `C_GetInterface("PKCS 11", 3.0)` first, then fall back to `C_GetFunctionList`.
//! - Never trust the version field of a `C_GetFunctionList` table (SoftHSM 2.7 says
//!   3.x on a 2.40-sized table): read exactly the 2.40 prefix and leave the 3.0
//!   entries empty.
//! - The library is never unloaded: another thread may still be inside it, and some
//!   modules do not survive `dlclose`. A re-initialisation `dlopen`s it again, which
//!   only bumps the loader's reference count.

use std::mem::{offset_of, size_of};
use std::path::Path;
use std::ptr;

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use pkcs11_sys::*;

use crate::error::{Error, Result};

/// Calls the backend's entry `$f`, or answers `CKR_FUNCTION_NOT_SUPPORTED` when the
/// backend's table has no such function.
macro_rules! forward {
    ($self:ident . $f:ident ( $( $arg:expr ),* $(,)? )) => {
        match $self.fns.$f {
            // SAFETY: the function pointer comes from the module's own table (read below).
            // Every pointer argument is derived from a live Rust reference or slice whose
            // length is passed alongside, or is NULL where the caller passed NULL; the
            // references outlive the call, which does not retain them (PKCS#11 §5).
            Some(f) => unsafe { f( $( $arg ),* ) },
            None => CKR_FUNCTION_NOT_SUPPORTED,
        }
    };
}

/// The symbol every Keywarden build exports; a backend exporting it is Keywarden.
pub const MARKER_SYMBOL: &[u8] = b"keywarden_version\0";

type GetFunctionListFn = unsafe extern "C" fn(CK_FUNCTION_LIST_PTR_PTR) -> CK_RV;
type GetInterfaceFn =
    unsafe extern "C" fn(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS) -> CK_RV;

// The 3.0 table starts with exactly the 2.40 table: copying the 2.40 prefix into a 3.0
// table is only sound while that holds.
const _: () = assert!(
    offset_of!(CK_FUNCTION_LIST_3_0, C_WaitForSlotEvent)
        == offset_of!(CK_FUNCTION_LIST, C_WaitForSlotEvent)
);
const _: () =
    assert!(offset_of!(CK_FUNCTION_LIST_3_0, C_GetInterfaceList) == size_of::<CK_FUNCTION_LIST>());

/// Opens the module and returns its function table normalised to the 3.0 layout.
pub(super) fn load_function_table(path: &Path) -> Result<CK_FUNCTION_LIST_3_0> {
    let lib = open(path)?;
    let table = match interface_3_0(&lib)? {
        Some(table) => table,
        None => function_list_2_40(&lib, path)?,
    };
    // Keep the module loaded for the life of the process (see the module docs).
    std::mem::forget(lib);
    Ok(table)
}

/// What `keywarden doctor` reports about a module without initialising it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSummary {
    /// Whether the module offers `C_GetInterface` with a 3.0 interface.
    pub has_v3_0: bool,
    /// How many of the 68 v2.40 functions the module provides.
    pub v2_40_functions: usize,
}

/// Loads the module the way the gateway would and summarises its table.
pub fn inspect_module(path: &Path) -> Result<ModuleSummary> {
    let table = load_function_table(path)?;
    Ok(ModuleSummary {
        has_v3_0: table.version.major >= 3,
        v2_40_functions: count_v2_40(&table),
    })
}

/// Whether the module's table has an entry for `f` (generated from the one table).
pub(super) fn has_entry(t: &CK_FUNCTION_LIST_3_0, f: crate::functions::FunctionId) -> bool {
    macro_rules! present {
        (v2_40 { $( $c2:ident [ $($k2:tt)* ] $n2:ident ( $( $a2:ident : $t2:ty ),* ); )* }
         v3_0 { $( $c3:ident [ $($k3:tt)* ] $n3:ident ( $( $a3:ident : $t3:ty ),* ); )* }) => {
            match f {
                $( crate::functions::FunctionId::$n2 => t.$n2.is_some(), )*
                $( crate::functions::FunctionId::$n3 => t.$n3.is_some(), )*
            }
        };
    }
    crate::for_each_pkcs11_function!(present)
}

fn count_v2_40(t: &CK_FUNCTION_LIST_3_0) -> usize {
    macro_rules! count {
        (v2_40 { $( $c:ident [ $($k:tt)* ] $n:ident ( $( $a:ident : $t:ty ),* ); )* } v3_0 { $($rest:tt)* }) => {
            [ $( t.$n.is_some(), )* ].iter().filter(|b| **b).count()
        };
    }
    crate::for_each_pkcs11_function!(count)
}

fn open(path: &Path) -> Result<Library> {
    // SAFETY: loading a shared object runs its initialisers. The path is the backend
    // the administrator configured; RTLD_NOW makes missing symbols fail here.
    let lib = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }
        .map_err(|e| Error::Load(format!("cannot load {}: {e}", path.display())))?;
    // SAFETY: only the symbol's presence is tested; it is never dereferenced.
    let is_keywarden = unsafe { lib.get::<*const u8>(MARKER_SYMBOL) }.is_ok();
    if is_keywarden {
        return Err(Error::Load(format!(
            "{} is Keywarden itself; backend.module must name the real token's module",
            path.display()
        )));
    }
    Ok(lib)
}

/// `C_GetInterface("PKCS 11", {3, 0})`, if the module has it and answers.
fn interface_3_0(lib: &Library) -> Result<Option<CK_FUNCTION_LIST_3_0>> {
    // SAFETY: the symbol, if present, has the C_GetInterface signature (PKCS#11 3.0 §5.4).
    let Ok(get_interface) = (unsafe { lib.get::<GetInterfaceFn>(b"C_GetInterface\0") }) else {
        return Ok(None);
    };
    let mut name = *b"PKCS 11\0";
    let mut version = CK_VERSION { major: 3, minor: 0 };
    let mut interface: CK_INTERFACE_PTR = ptr::null_mut();
    // SAFETY: every pointer is to a live local; the module writes one pointer to an
    // interface it owns.
    let rv = unsafe { get_interface(name.as_mut_ptr(), &mut version, &mut interface, 0) };
    if rv != CKR_OK || interface.is_null() {
        return Ok(None);
    }
    // SAFETY: on CKR_OK the module returned a pointer to its CK_INTERFACE, valid for
    // the life of the loaded module.
    let list = unsafe { (*interface).pFunctionList }.cast::<CK_FUNCTION_LIST_3_0>();
    if list.is_null() {
        return Ok(None);
    }
    // SAFETY: we asked for version 3.0 explicitly, so the table is a CK_FUNCTION_LIST_3_0;
    // the copy is a plain read of function pointers.
    Ok(Some(unsafe { ptr::read(list) }))
}

/// `C_GetFunctionList`, reading exactly the 2.40-sized prefix whatever `version` says.
fn function_list_2_40(lib: &Library, path: &Path) -> Result<CK_FUNCTION_LIST_3_0> {
    // SAFETY: C_GetFunctionList has this signature in every PKCS#11 version.
    let get_list =
        unsafe { lib.get::<GetFunctionListFn>(b"C_GetFunctionList\0") }.map_err(|_| {
            Error::Load(format!(
                "{} exports neither C_GetInterface nor C_GetFunctionList",
                path.display()
            ))
        })?;
    let mut list: CK_FUNCTION_LIST_PTR = ptr::null_mut();
    // SAFETY: the module writes one pointer into our local.
    let rv = unsafe { get_list(&mut list) };
    if rv != CKR_OK || list.is_null() {
        return Err(Error::Load(format!(
            "{}: C_GetFunctionList returned {}",
            path.display(),
            crate::abi::rv_name(rv)
        )));
    }
    // SAFETY: the module returned its 2.40 table. We read only size_of::<CK_FUNCTION_LIST>
    // bytes, never trusting the version field, into a table whose layout starts with the
    // same fields (asserted above); the rest stays None (all-zero is None for Option<fn>).
    let table = unsafe {
        let v2 = ptr::read(list);
        let mut full: CK_FUNCTION_LIST_3_0 = std::mem::zeroed();
        ptr::copy_nonoverlapping(
            (&v2 as *const CK_FUNCTION_LIST).cast::<u8>(),
            (&mut full as *mut CK_FUNCTION_LIST_3_0).cast::<u8>(),
            size_of::<CK_FUNCTION_LIST>(),
        );
        full
    };
    Ok(CK_FUNCTION_LIST_3_0 {
        version: CK_VERSION {
            major: 2,
            minor: 40,
        },
        ..table
    })
}

// The data calls of an operation (class `OperationData` in the one function
// table), forwarded with the application's raw arguments as they came. Used only
// for a call Keywarden's own argument checks refused (a NULL length cell, NULL
// input with a length): the token then answers that very call itself, so its
// operation ends or stays active as it would directly (PKCS#11 v2.40 §5.2 and
// §5.8-§5.13; docs/abi-conventions.md, "Operations after a refused data call").
// Generated from the one table, so no data call can be missed. They live here,
// with the loader, because they are `unsafe fn`s: the raw pointers are the
// application's.

macro_rules! raw_data_calls {
    (
        v2_40 { $( $c2:ident [ $($k2:tt)* ] $n2:ident ( $( $a2:ident : $t2:ty ),* ); )* }
        v3_0 { $( $c3:ident [ $($k3:tt)* ] $n3:ident ( $( $a3:ident : $t3:ty ),* ); )* }
    ) => {
        #[allow(non_snake_case)]
        impl super::LoadedModule {
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

// The test double (`double/`) and the service client (`remote/`) read and fill
// templates and mechanism parameters the way a module does: through each
// attribute's `pValue` and the parameter's pointers. These are the pointer reads
// they need, kept here with the backend's other `unsafe`.

/// The value bytes of one template attribute (`None` for a NULL `pValue`).
pub(super) fn attr_value(a: &CK_ATTRIBUTE) -> Option<&[u8]> {
    let len = usize::try_from(a.ulValueLen).ok()?;
    if a.pValue.is_null() {
        return None;
    }
    // SAFETY: the template contract of every `Backend` method (api.rs): a non-NULL
    // `pValue` points to `ulValueLen` bytes live for the call, as the C function
    // requires of its caller; the slice does not outlive the borrowed attribute.
    Some(unsafe { std::slice::from_raw_parts(a.pValue.cast::<u8>(), len) })
}

/// The value buffer (`None` for a NULL `pValue`) and the length cell of one
/// template attribute, to answer `C_GetAttributeValue`.
pub(super) fn attr_value_mut(a: &mut CK_ATTRIBUTE) -> (Option<&mut [u8]>, &mut CK_ULONG) {
    let len = usize::try_from(a.ulValueLen).unwrap_or(0);
    let buf = if a.pValue.is_null() {
        None
    } else {
        // SAFETY: as for `attr_value`: `pValue` points to `ulValueLen` writable
        // bytes live for the call, and nothing else borrows them meanwhile.
        Some(unsafe { std::slice::from_raw_parts_mut(a.pValue.cast::<u8>(), len) })
    };
    (buf, &mut a.ulValueLen)
}

/// The attributes of an array attribute's value (`CKF_ARRAY_ATTRIBUTE`, PKCS#11
/// v2.40 §4.1: `pValue` points to `ulValueLen / sizeof(CK_ATTRIBUTE)` attributes).
/// `None` for a NULL `pValue` or a length that is no whole number of attributes.
pub(super) fn attr_array(a: &CK_ATTRIBUTE) -> Option<&[CK_ATTRIBUTE]> {
    let bytes = usize::try_from(a.ulValueLen).ok()?;
    if a.pValue.is_null()
        || bytes % size_of::<CK_ATTRIBUTE>() != 0
        || a.pValue.align_offset(std::mem::align_of::<CK_ATTRIBUTE>()) != 0
    {
        return None;
    }
    // SAFETY: the template contract (api.rs): a non-NULL `pValue` points to
    // `ulValueLen` bytes live for the call; for an array attribute those bytes are
    // the attributes (§4.1), aligned as checked above.
    Some(unsafe {
        std::slice::from_raw_parts(
            a.pValue.cast::<CK_ATTRIBUTE>(),
            bytes / size_of::<CK_ATTRIBUTE>(),
        )
    })
}

/// A mechanism's parameter bytes; `None` when it has none.
pub(super) fn mechanism_param(m: &CK_MECHANISM) -> Option<&[u8]> {
    let len = usize::try_from(m.ulParameterLen).ok()?;
    if m.pParameter.is_null() || len == 0 {
        return None;
    }
    // SAFETY: the mechanism contract of every `Backend` method (api.rs): the front
    // end checked that `pParameter` points to `ulParameterLen` bytes live for the
    // call (`ffi::decode::checked_mechanism`).
    Some(unsafe { std::slice::from_raw_parts(m.pParameter.cast::<u8>(), len) })
}

/// The buffers the pointer `fields` of `m`'s parameter name, in order
/// (`wire::mechanism::pointed`); a NULL one is empty.
pub(super) fn inner_buffers<'m>(
    m: &'m CK_MECHANISM,
    fields: &[crate::abi::PointerField],
) -> Option<Vec<&'m [u8]>> {
    let param = mechanism_param(m)?;
    let mut inner = Vec::with_capacity(fields.len());
    for (p, n) in crate::wire::mechanism::pointed(fields, param).ok()? {
        if p == 0 || n == 0 {
            inner.push(&[][..]);
            continue;
        }
        // SAFETY: the same contract covers the struct's inner buffers: the front end
        // refused a NULL pointer with a length (`abi::check_inner_buffers`), and a
        // non-NULL one points to its length's bytes, as the token would read them.
        inner.push(unsafe { std::slice::from_raw_parts(p as *const u8, n) });
    }
    Some(inner)
}
