//! The token PIN files of the configuration (`[backend] pin_file`, `so_pin_file`):
//! read at each use, refused when others may read them, zeroized. The module reads
//! them for named logins (`gateway::named`) and for the audit seal key's login
//! (`audit::TokenSealer`).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use zeroize::Zeroizing;

/// The PIN in `path`: the file's bytes without a trailing newline. Refused (with
/// the reason in words, never the PIN) when the file cannot be read, is empty, or
/// its mode lets group or others read it (a PIN others can read is no secret).
pub fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mode = f
        .metadata()
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "mode {:o} lets others read it (use 0600)",
            mode & 0o777
        ));
    }
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
