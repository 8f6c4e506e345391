//! The module's own log: warnings and errors to stderr, at a level chosen by
//! `KEYWARDEN_LOG` (default `warn`, so application owners see nothing in normal
//! operation). Nothing logged ever contains a PIN, key material or data buffer:
//! log lines are built from typed descriptors, never from raw arguments.
//!
//! Repeated lines are limited: a message identical to one written less than
//! [`REPEAT_WINDOW`] ago is counted, not written, and the next time it is written
//! it says how many were left out ("(repeated K times)"). A refusal that repeats
//! per call (a full `required` trail refuses every call, tens of thousands a
//! second) then costs the operator one line per window instead of a flood.

use std::collections::HashMap;
use std::sync::Once;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The environment variable that sets the log level (`error`, `warn`, `info`, `debug`).
pub const LOG_ENV: &str = "KEYWARDEN_LOG";

/// How long an identical message stays quiet after it was written.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(10);

/// At most this many distinct messages are tracked; past it the table starts over
/// (a message may then be written once more early, never lost).
const TRACKED: usize = 256;

/// Installs the logger once per process; a host application that already installed
/// its own `log` backend in this same library instance keeps it.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let env = env_logger::Env::new().filter_or(LOG_ENV, "warn,cryptoki=off");
        let inner = env_logger::Builder::from_env(env)
            .format_timestamp_micros()
            .format_target(false)
            .build();
        let max = inner.filter();
        if log::set_boxed_logger(Box::new(Limited::new(inner))).is_ok() {
            log::set_max_level(max);
        }
    });
}

/// When a message was last written, and how many copies were left out since.
#[derive(Debug, Clone, Copy)]
struct Seen {
    written: Instant,
    left_out: u64,
}

/// The repeat limiter over any logger.
struct Limited<L> {
    inner: L,
    seen: Mutex<HashMap<String, Seen>>,
}

/// What to do with one message.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Write it; `left_out` copies were dropped since it was last written.
    Write { left_out: u64 },
    /// Drop it (counted).
    Drop,
}

impl<L> Limited<L> {
    fn new(inner: L) -> Self {
        Limited {
            inner,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn verdict(&self, message: &str, now: Instant) -> Verdict {
        let mut seen = self.seen.lock();
        if let Some(s) = seen.get_mut(message) {
            if now.saturating_duration_since(s.written) < REPEAT_WINDOW {
                s.left_out += 1;
                return Verdict::Drop;
            }
            let left_out = s.left_out;
            *s = Seen {
                written: now,
                left_out: 0,
            };
            return Verdict::Write { left_out };
        }
        if seen.len() >= TRACKED {
            seen.clear();
        }
        seen.insert(
            message.to_owned(),
            Seen {
                written: now,
                left_out: 0,
            },
        );
        Verdict::Write { left_out: 0 }
    }
}

impl<L: log::Log> log::Log for Limited<L> {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.inner.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        match self.verdict(&message, Instant::now()) {
            Verdict::Drop => {}
            Verdict::Write { left_out: 0 } => self.inner.log(record),
            Verdict::Write { left_out } => self.inner.log(
                &log::Record::builder()
                    .metadata(record.metadata().clone())
                    .args(format_args!("{message} (repeated {left_out} times)"))
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            ),
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identical_message_is_written_once_per_window_with_its_count() {
        let l = Limited::new(());
        let t0 = Instant::now();
        assert_eq!(l.verdict("full", t0), Verdict::Write { left_out: 0 });
        for i in 1..=5 {
            assert_eq!(
                l.verdict("full", t0 + Duration::from_millis(i)),
                Verdict::Drop
            );
        }
        assert_eq!(l.verdict("other", t0), Verdict::Write { left_out: 0 });
        let later = t0 + REPEAT_WINDOW;
        assert_eq!(l.verdict("full", later), Verdict::Write { left_out: 5 });
        assert_eq!(l.verdict("full", later), Verdict::Drop);
    }
}
