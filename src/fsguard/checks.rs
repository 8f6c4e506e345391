//! The checks a file or directory gets from its `stat`: no symbolic link, the
//! expected type and one name only, a trusted owner, and mode bits that let no one
//! outside the owner and the sharing group write it (nor read a secret).

use std::path::Path;

use super::{FileError, Kind, Sharing};

/// The checks for one `stat`: type, links, owner, mode bits.
pub(super) fn check_stat(
    path: &Path,
    st: &rustix::fs::Stat,
    dir: bool,
    kind: Kind,
    sharing: Sharing,
    dir_owner: Option<u32>,
) -> Result<(), FileError> {
    check_type(path, st, dir)?;
    check_access(path, st, dir, kind, sharing, dir_owner)
}

/// No symbolic link, the expected type, and (a file) one name only.
fn check_type(path: &Path, st: &rustix::fs::Stat, dir: bool) -> Result<(), FileError> {
    let shown = path.display();
    let file_type = rustix::fs::FileType::from_raw_mode(st.st_mode);
    if file_type == rustix::fs::FileType::Symlink {
        return Err(FileError::unsafe_(
            path,
            "is a symbolic link (refused: it would be followed)".into(),
            format!(
                "rm {shown}, then create the real {}",
                if dir { "directory" } else { "file" }
            ),
        ));
    }
    let expected = if dir {
        rustix::fs::FileType::Directory
    } else {
        rustix::fs::FileType::RegularFile
    };
    if file_type != expected {
        return Err(FileError::unsafe_(
            path,
            format!(
                "is not a {}",
                if dir { "directory" } else { "regular file" }
            ),
            format!("remove {shown}"),
        ));
    }
    if !dir && st.st_nlink > 1 {
        return Err(FileError::unsafe_(
            path,
            format!(
                "has {} hard links (it may be a link to a file elsewhere)",
                st.st_nlink
            ),
            // Never a copy: the other name may be a file that must not be read here.
            format!("rm {shown} (then let Keywarden create it afresh, or restore it)"),
        ));
    }
    Ok(())
}

/// A trusted owner, and mode bits that let no one outside the owner and the
/// sharing group write it (nor, for a private file, read it).
fn check_access(
    path: &Path,
    st: &rustix::fs::Stat,
    dir: bool,
    kind: Kind,
    sharing: Sharing,
    dir_owner: Option<u32>,
) -> Result<(), FileError> {
    let shown = path.display();
    let me = rustix::process::geteuid().as_raw();
    let (uid, gid, mode) = (st.st_uid, st.st_gid, st.st_mode & 0o7777);
    let in_group = sharing.gid == Some(gid);
    let trusted_owner = uid == me || uid == 0 || Some(uid) == dir_owner;
    if !trusted_owner && !in_group {
        return Err(FileError::unsafe_(
            path,
            format!(
                "is owned by uid {uid}, neither this user ({me}), root nor the directory's owner"
            ),
            format!("rm {shown} if it is not yours, else chown {me} {shown}"),
        ));
    }
    if mode & 0o002 != 0 {
        return Err(FileError::unsafe_(
            path,
            format!("is writable by others (mode {mode:o})"),
            format!("chmod o-w {shown}"),
        ));
    }
    if mode & 0o020 != 0 && !in_group {
        let fix = match sharing.gid {
            Some(g) => format!("chgrp {g} {shown} (the configured group), or chmod g-w {shown}"),
            None => format!("chmod g-w {shown} (or configure the sharing group)"),
        };
        return Err(FileError::unsafe_(
            path,
            format!("is writable by group {gid}, which is not the configured sharing group (mode {mode:o})"),
            fix,
        ));
    }
    if !dir && kind != Kind::Shared && mode & 0o007 != 0 {
        return Err(FileError::unsafe_(
            path,
            format!("is accessible to others (mode {mode:o})"),
            format!("chmod o-rwx {shown}"),
        ));
    }
    if !dir && kind == Kind::Secret && mode & 0o070 != 0 && (!in_group || mode & 0o030 != 0) {
        return Err(FileError::unsafe_(
            path,
            format!("is accessible to group {gid} (mode {mode:o}); a key may only be readable by the owner and the sharing group"),
            format!("chmod 600 {shown}"),
        ));
    }
    Ok(())
}
