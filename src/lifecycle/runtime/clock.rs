//! The module's one clock: the wall clock, or the wall clock shifted so that it read
//! `KEYWARDEN_NOW` at start-up (tests; only where `policy.clock_override` allows it).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::policy::{Clock, SystemClock};

/// The wall clock shifted so that it read `KEYWARDEN_NOW` at start-up.
#[derive(Debug)]
struct ShiftedClock {
    offset: i64,
}

impl Clock for ShiftedClock {
    fn unix_seconds(&self) -> i64 {
        SystemClock.unix_seconds().saturating_add(self.offset)
    }

    fn monotonic_millis(&self) -> u64 {
        SystemClock.monotonic_millis()
    }
}

/// The clock of the running module (policy time windows and lifecycle dates).
pub(crate) fn clock_from_env(override_allowed: bool) -> Result<Arc<dyn Clock>> {
    match crate::policy::injected_now(override_allowed).map_err(Error::Config)? {
        None => Ok(Arc::new(SystemClock)),
        Some(at) => {
            let offset = at.saturating_sub(SystemClock.unix_seconds());
            log::warn!(
                "{}: the module's clock is shifted by {offset} s",
                crate::policy::NOW_ENV
            );
            Ok(Arc::new(ShiftedClock { offset }))
        }
    }
}
