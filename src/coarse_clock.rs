//! The clocks of the per-call tests: "is a check due?" (policy reload, store change
//! watcher) on `CLOCK_MONOTONIC_COARSE`, and the policy's and lifecycle's wall-clock
//! seconds on `CLOCK_REALTIME_COARSE`: the kernel's last tick read from the vDSO
//! page without `rdtsc`. Its resolution is one tick (1–4 ms), ample for checks due
//! every 100 ms or more; `Instant::now` cost ~25 ns a read on this KVM guest and was
//! read several times per forwarded call (benches/README.md). Also the calendar
//! date of a Unix time, shared by the store, the audit trail and the CLI.

use rustix::time::{clock_gettime, ClockId};

/// Nanoseconds on a monotonic clock with an arbitrary origin, at tick resolution.
#[inline]
pub fn monotonic_nanos() -> u64 {
    let t = clock_gettime(ClockId::MonotonicCoarse);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// Seconds since the Unix epoch (negative before it), at tick resolution: a
/// second boundary is seen up to one tick late, which time windows and
/// cryptoperiods (whole seconds and minutes) do not notice.
#[inline]
pub fn unix_seconds() -> i64 {
    clock_gettime(ClockId::RealtimeCoarse).tv_sec
}

/// The UTC calendar date `(year, month, day)` of a Unix time (civil-from-days,
/// H. Hinnant; proleptic Gregorian): for tables, `CK_DATE`s and the audit trail's
/// timestamps, so none needs a date library.
pub fn civil_date(t: i64) -> (i64, u32, u32) {
    let z = t.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // In range by construction: month 1..=12, day 1..=31.
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_never_goes_back_and_follows_the_fine_clock() {
        let start = std::time::Instant::now();
        let first = monotonic_nanos();
        let mut last = first;
        while start.elapsed() < std::time::Duration::from_millis(30) {
            let now = monotonic_nanos();
            assert!(now >= last);
            last = now;
        }
        // 30 ms passed on the fine clock; the coarse one moved by that, give or
        // take a tick or two.
        let moved = last - first;
        assert!((20_000_000..200_000_000).contains(&moved), "{moved}");
    }

    #[test]
    fn its_seconds_are_the_system_clock_s() {
        let fine = |()| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
        };
        let (before, coarse, after) = (fine(()), unix_seconds(), fine(()));
        // One tick late at most: a second boundary may fall between the reads.
        assert!(
            (before - 1..=after).contains(&coarse),
            "{before} {coarse} {after}"
        );
    }
}
