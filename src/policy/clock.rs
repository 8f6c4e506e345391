//! Time for the policy: wall time for time-of-day/day-of-week windows, monotonic
//! time for the reload check. Injected as a trait so tests (and `policy explain
//! --at`) control both.
//!
//! Local time is the wall clock plus a fixed UTC offset from the policy file
//! (`settings.utc_offset`), not the host's time zone: the module runs inside
//! arbitrary multi-threaded host processes where reading the zone database or
//! `localtime_r` per decision is neither cheap nor (for the `time` crate) sound, and
//! a fixed offset makes a policy mean the same on every host. The cost is that
//! windows do not follow daylight-saving changes; docs/policy.md says so.

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// `KEYWARDEN_NOW=<unix seconds>`: a "now" for tests and what-if drills, for the
/// module and the `keys` CLI alike, honoured only with `[policy] clock_override =
/// true` (docs/lifecycle.md, "Clock").
pub const NOW_ENV: &str = "KEYWARDEN_NOW";

/// The time `KEYWARDEN_NOW` names when `allowed`; `None` when it is unset, or set
/// but not allowed — then ignored with a warning: an application's environment
/// must not be able to move an expired key back into its cryptoperiod.
pub fn injected_now(allowed: bool) -> Result<Option<i64>, String> {
    let Ok(v) = std::env::var(NOW_ENV) else {
        return Ok(None);
    };
    if !allowed {
        log::warn!(
            "{NOW_ENV} is set but ignored: the configuration has no [policy] clock_override = true"
        );
        return Ok(None);
    }
    v.trim()
        .parse()
        .map(Some)
        .map_err(|_| format!("{NOW_ENV}={v:?} is not a number of Unix seconds"))
}

/// A source of time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Seconds since the Unix epoch, UTC.
    fn unix_seconds(&self) -> i64;
    /// Milliseconds on a clock that never goes back (any origin).
    fn monotonic_millis(&self) -> u64;
}

/// The real clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Read on every key-using decision (time windows, cryptoperiods): the coarse
    /// clock, whole seconds.
    fn unix_seconds(&self) -> i64 {
        crate::coarse_clock::unix_seconds()
    }

    /// Read on every policy load (the reload check): the coarse clock.
    fn monotonic_millis(&self) -> u64 {
        crate::coarse_clock::monotonic_nanos() / 1_000_000
    }
}

/// A clock that moves only when told to: for tests and for `policy explain --at`.
#[derive(Debug, Default)]
pub struct ManualClock {
    unix: AtomicI64,
    mono: AtomicU64,
}

impl ManualClock {
    /// A clock at `unix_seconds`, monotonic time 0.
    pub fn at(unix_seconds: i64) -> ManualClock {
        ManualClock {
            unix: AtomicI64::new(unix_seconds),
            mono: AtomicU64::new(0),
        }
    }

    /// Sets the wall time.
    pub fn set(&self, unix_seconds: i64) {
        self.unix.store(unix_seconds, Ordering::SeqCst);
    }

    /// Moves both clocks forward.
    pub fn advance_millis(&self, millis: u64) {
        self.mono.fetch_add(millis, Ordering::SeqCst);
        let secs = i64::try_from(millis / 1000).unwrap_or(i64::MAX);
        self.unix.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn unix_seconds(&self) -> i64 {
        self.unix.load(Ordering::SeqCst)
    }

    fn monotonic_millis(&self) -> u64 {
        self.mono.load(Ordering::SeqCst)
    }
}

/// A local moment as time windows see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    /// Minutes since local midnight, 0..1440.
    pub minute: u16,
}

impl LocalTime {
    /// The local time at `unix_seconds` for a fixed offset.
    pub fn from_unix(unix_seconds: i64, utc_offset_seconds: i32) -> LocalTime {
        let local = unix_seconds.saturating_add(i64::from(utc_offset_seconds));
        let days = local.div_euclid(86_400);
        let second_of_day = local.rem_euclid(86_400);
        // 1970-01-01 was a Thursday: index 3 with Monday = 0.
        let weekday = (days + 3).rem_euclid(7);
        LocalTime {
            weekday: u8::try_from(weekday).unwrap_or(0),
            minute: u16::try_from(second_of_day / 60).unwrap_or(0),
        }
    }
}

/// Day names as policy files write them, Monday first.
pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_from_unix() {
        // 2024-01-01 was a Monday; 00:00 UTC.
        let monday = 1_704_067_200;
        assert_eq!(
            LocalTime::from_unix(monday, 0),
            LocalTime {
                weekday: 0,
                minute: 0
            }
        );
        // 23:30 UTC Sunday is 00:30 Monday at +01:00.
        assert_eq!(
            LocalTime::from_unix(monday - 1800, 3600),
            LocalTime {
                weekday: 0,
                minute: 30
            }
        );
        // and 22:30 Sunday at -01:00
        assert_eq!(
            LocalTime::from_unix(monday - 1800, -3600),
            LocalTime {
                weekday: 6,
                minute: 22 * 60 + 30
            }
        );
        assert_eq!(LocalTime::from_unix(0, 0).weekday, 3);
        assert_eq!(LocalTime::from_unix(-1, 0).weekday, 2);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::at(100);
        assert_eq!(c.unix_seconds(), 100);
        c.advance_millis(2500);
        assert_eq!(c.monotonic_millis(), 2500);
        assert_eq!(c.unix_seconds(), 102);
        c.set(5);
        assert_eq!(c.unix_seconds(), 5);
        let s = SystemClock;
        assert!(s.unix_seconds() > 1_600_000_000);
        let a = s.monotonic_millis();
        assert!(s.monotonic_millis() >= a);
    }
}
