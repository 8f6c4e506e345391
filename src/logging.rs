//! The module's own log: warnings and errors to stderr, at a level chosen by
//! `KEYWARDEN_LOG` (default `warn`, so application owners see nothing in normal
//! operation). Nothing logged ever contains a PIN, key material or data buffer:
//! log lines are built from typed descriptors, never from raw arguments.

use std::sync::Once;

/// The environment variable that sets the log level (`error`, `warn`, `info`, `debug`).
pub const LOG_ENV: &str = "KEYWARDEN_LOG";

/// Installs the logger once per process; a host application that already installed
/// its own `log` backend in this same library instance keeps it.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let env = env_logger::Env::new().filter_or(LOG_ENV, "warn,cryptoki=off");
        let _ = env_logger::Builder::from_env(env)
            .format_timestamp_micros()
            .format_target(false)
            .try_init();
    });
}
