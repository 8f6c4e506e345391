//! The token PIN files of the configuration (`[backend] pin_file`, `so_pin_file`):
//! read at each use, refused when others may read them, zeroized. The module reads
//! them for named logins (`gateway::named`) and for the audit seal key's login
//! (`audit::TokenSealer`).

use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

/// The PIN in `path`: the file's bytes without a trailing newline. Refused (with
/// the reason in words, never the PIN) when the file cannot be read, is empty, or is
/// not owner-only (0600), owned by this user or root, writable by nobody else
/// (`fsguard::open_checked`): a PIN others can read is no secret.
pub fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut f = crate::fsguard::open_checked(
        path,
        crate::fsguard::Kind::Secret,
        crate::fsguard::Sharing::default(),
    )
    .map_err(|e| e.to_string())?;
    let mut pin = Zeroizing::new(Vec::with_capacity(64));
    f.read_to_end(&mut pin).map_err(|e| e.to_string())?;
    // A trailing newline (from `echo` or an editor) is not part of the PIN.
    while pin.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        pin.pop();
    }
    if pin.is_empty() {
        return Err("empty".into());
    }
    Ok(pin)
}
