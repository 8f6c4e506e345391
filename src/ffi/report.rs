//! Reporting a refused `C_Initialize` where an operator will see it: one line on
//! stderr and one in syslog. The message comes from [`Error`]'s `Display`, which
//! never contains secrets.

use std::ffi::CString;

use crate::error::Error;

/// Writes "keywarden: C_Initialize refused: <reason>" to stderr and syslog (LOG_ERR).
pub(super) fn init_failure(err: &Error) {
    let line = format!("keywarden: C_Initialize refused: {err}");
    eprintln!("{line}");
    // Interior NULs cannot come from our messages, but never fail over them.
    let Ok(msg) = CString::new(line.replace('\0', " ")) else {
        return;
    };
    // SAFETY: "%s" with one NUL-terminated argument; openlog is not required, and
    // syslog with no /dev/log available silently drops the message.
    unsafe { libc::syslog(libc::LOG_ERR | libc::LOG_USER, c"%s".as_ptr(), msg.as_ptr()) };
}
