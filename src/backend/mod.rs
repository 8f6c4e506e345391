//! The real ("backend") PKCS#11 module behind Keywarden, and the seam the gateway
//! calls it through.
//!
//! - [`Backend`] (`api.rs`): the trait the gateway, the lifecycle and the audit
//!   sealer use, one safe method per PKCS#11 function plus initialise, finalise
//!   and which functions exist; [`call_keyed`], the functions that take a key,
//!   by [`FunctionId`](crate::functions::FunctionId).
//! - [`LoadedModule`]: the implementation over a real module, loaded defensively by
//!   `loader.rs`; `calls.rs` and `crypto_calls.rs` forward each method to its table.
//! - `helpers.rs`: Keywarden's own short conversations with any backend (find the
//!   token by label, a helper session, sign once), built on the trait's methods.
//! - [`remote`]: the Keywarden service as a backend: each method one request over
//!   a [`remote::Transport`], and [`remote::serve_request`], the service's side;
//!   one list of every method's argument kinds generates both (`remote/schema.rs`).
//! - `double` (unit tests only): an in-memory token with a fault script.
//!
//! `loader.rs` (loading the table, the `forward!` macro that calls its entries, and
//! the template and mechanism reads of the double and the remote backend) and `ffi`
//! are the only places with `unsafe`. The safe API takes Rust
//! references and slices; `None` for an optional slice means the application passed
//! `NULL_PTR` with a zero length, and is forwarded as `NULL_PTR` so the backend answers
//! exactly as it would directly.

// First: `forward!`, used by the call files, is defined in `loader`, and
// `crypto_shapes!` in `api`.
#[macro_use]
mod loader;
#[macro_use]
mod api;
mod calls;
mod crypto_calls;
#[cfg(test)]
pub(crate) mod double;
mod forward;
mod helpers;
pub mod remote;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use pkcs11_sys::*;

use crate::error::{Error, Result};

pub use api::{call_keyed, Backend, Calls, CryptoCalls, Notify};
pub use helpers::{FindAttr, HelperSession};
pub use loader::{inspect_module, ModuleSummary};

/// The `C_Initialize` arguments Keywarden gives every backend: OS locking, no
/// application mutex callbacks (PKCS#11 v2.40 §5.4, case 2 of `CK_C_INITIALIZE_ARGS`).
/// Public so that tests and benchmarks that load a module directly initialise it the
/// same way.
pub fn os_locking_init_args() -> CK_C_INITIALIZE_ARGS {
    CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: CKF_OS_LOCKING_OK,
        pReserved: std::ptr::null_mut(),
    }
}

/// A loaded backend module and its normalised function table: the [`Backend`]
/// every gateway outside the unit tests runs on.
pub struct LoadedModule {
    path: PathBuf,
    /// The backend's functions in the 3.0-sized table; 3.0 entries are `None` for a
    /// 2.40 module, and any entry the module left NULL is `None`.
    fns: CK_FUNCTION_LIST_3_0,
    /// True when our `C_Initialize` initialised the backend, so our `C_Finalize` must
    /// finalise it. False when something else in the process already had.
    owns_initialization: AtomicBool,
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// How the backend's `C_Initialize` went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOutcome {
    /// We initialised it; we will finalise it.
    Initialized,
    /// It was already initialised by someone else in this process; we leave it be.
    AlreadyInitialized,
}

impl LoadedModule {
    /// Loads the module at `path` (see `loader.rs` for the defensive rules).
    pub fn load(path: &Path) -> Result<LoadedModule> {
        let fns = loader::load_function_table(path)?;
        Ok(LoadedModule {
            path: path.to_owned(),
            fns,
            owns_initialization: AtomicBool::new(false),
        })
    }

    /// The module's path, as configured.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Backend for LoadedModule {
    fn has_function(&self, f: crate::functions::FunctionId) -> bool {
        loader::has_entry(&self.fns, f)
    }

    fn has_v3_0(&self) -> bool {
        self.fns.version.major >= 3
    }

    /// OS locking, no application mutex callbacks, whatever the application
    /// passed to us (§5.4). `CKR_CRYPTOKI_ALREADY_INITIALIZED` is accepted: the
    /// application (or another provider in the same process) loaded the backend
    /// directly as well.
    fn initialize(&self) -> Result<InitOutcome> {
        let rv = self.c_initialize_os_locking();
        match rv {
            CKR_OK => {
                self.owns_initialization.store(true, Ordering::SeqCst);
                Ok(InitOutcome::Initialized)
            }
            CKR_CRYPTOKI_ALREADY_INITIALIZED => Ok(InitOutcome::AlreadyInitialized),
            rv => Err(Error::Load(format!(
                "{}: C_Initialize returned {}",
                self.path.display(),
                crate::abi::rv_name(rv)
            ))),
        }
    }

    fn finalize(&self) -> Result<()> {
        if self.owns_initialization.swap(false, Ordering::SeqCst) {
            crate::error::check_rv(self.c_finalize())
        } else {
            Ok(())
        }
    }

    fn loaded_module(&self) -> Option<&LoadedModule> {
        Some(self)
    }
}
