//! The listening socket: bound at a path, or handed over by systemd.
//!
//! A path is bound only where nothing but a stale socket is: a symlink or any other
//! file there is refused (never followed, never removed), and a socket a live
//! service still answers on is refused too. The socket is bound under a temporary
//! name beside the path, given mode 0660 and renamed into place, so the path never
//! names a socket with the umask's mode.

use std::io::{Error, ErrorKind, Result};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use rustix::net::sockopt::{socket_acceptconn, socket_domain, socket_type};
use rustix::net::{connect, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use rustix::process::{getpid, pidfd_getfd, pidfd_open, PidfdFlags, PidfdGetfdFlags};

/// The mode of a bound socket: the service's user and group may connect.
pub const SOCKET_MODE: u32 = 0o660;

/// The first descriptor systemd passes (sd_listen_fds(3)).
const LISTEN_FDS_START: i32 = 3;

/// A socket bound at a path; the path is removed on drop if it still names it.
#[derive(Debug)]
pub struct Bound {
    /// The listening socket.
    pub listener: UnixListener,
    path: PathBuf,
    id: (u64, u64),
}

impl Bound {
    /// Where it is bound.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && (m.dev(), m.ino()) == self.id);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds a Unix stream socket at `path` with [`SOCKET_MODE`].
pub fn bind(path: &Path) -> Result<Bound> {
    clear_stale(path)?;
    let name = path
        .file_name()
        .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "the socket path has no file name"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let listener = UnixListener::bind(&temp)?;
    let placed = std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(SOCKET_MODE))
        .and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    let m = std::fs::symlink_metadata(path)?;
    Ok(Bound {
        listener,
        path: path.to_owned(),
        id: (m.dev(), m.ino()),
    })
}

/// Removes a socket at `path` that nothing listens on; refuses anything else there.
fn clear_stale(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket (a symlink or a file): refusing to replace it",
                path.display()
            ),
        ));
    }
    if answers(path)? {
        return Err(Error::new(
            ErrorKind::AddrInUse,
            format!("{}: a service is listening there", path.display()),
        ));
    }
    std::fs::remove_file(path)
}

/// Whether a service listens on the socket at `path`. The connect does not wait:
/// a listener whose queue is full (`EAGAIN`) is live too; only a refused
/// connection (`ECONNREFUSED`: nothing is bound there) makes the socket stale.
fn answers(path: &Path) -> Result<bool> {
    let fd = socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    match connect(&fd, &SocketAddrUnix::new(path)?) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::CONNREFUSED) => Ok(false),
        Err(rustix::io::Errno::AGAIN) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// The listening socket systemd passed (`LISTEN_PID` is this process and
/// `LISTEN_FDS` at least 1: descriptor 3), `None` without socket activation. The
/// descriptor must be a listening Unix stream socket.
///
/// It is taken as a duplicate through `pidfd_getfd` on this process's own pidfd,
/// which needs no `unsafe` (a process may always reach its own descriptors);
/// descriptor 3 itself stays open, unused.
pub fn activated() -> Result<Option<UnixListener>> {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .is_some_and(|pid| pid == getpid().as_raw_pid());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    if !ours || count == 0 {
        return Ok(None);
    }
    let me = pidfd_open(getpid(), PidfdFlags::empty())?;
    let fd = pidfd_getfd(&me, LISTEN_FDS_START, PidfdGetfdFlags::empty())?;
    let listening = socket_domain(&fd)? == AddressFamily::UNIX
        && socket_type(&fd)? == SocketType::STREAM
        && socket_acceptconn(&fd)?;
    if !listening {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "socket activation: descriptor 3 is not a listening Unix stream socket",
        ));
    }
    Ok(Some(UnixListener::from(fd)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn binds_with_its_mode_and_removes_the_path_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let bound = bind(&path).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o7777, SOCKET_MODE);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        UnixStream::connect(&path).unwrap();
        drop(bound);
        assert!(!path.exists());
    }

    #[test]
    fn a_stale_socket_is_replaced_a_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        drop(UnixListener::bind(&path).unwrap());
        let live = bind(&path).unwrap();
        let e = bind(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}");
        drop(live);
    }

    #[test]
    fn a_listener_with_a_full_queue_is_live_and_bind_does_not_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let _listener = UnixListener::bind(&path).unwrap();
        let mut queued = Vec::new();
        while answers(&path).unwrap() {
            let fd = socket_with(
                AddressFamily::UNIX,
                SocketType::STREAM,
                SocketFlags::NONBLOCK,
                None,
            )
            .unwrap();
            let full = connect(&fd, &SocketAddrUnix::new(&path).unwrap()).is_err();
            queued.push(fd);
            if full {
                break;
            }
            assert!(queued.len() < 100_000, "the queue never fills");
        }
        let e = bind(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}");
    }

    #[test]
    fn a_symlink_or_a_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for path in [&link, &target] {
            let e = bind(path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
        }
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }

    #[test]
    fn no_activation_without_listen_pid() {
        // The test process was not started by systemd with LISTEN_PID set to it.
        if std::env::var_os("LISTEN_PID").is_none() {
            assert!(activated().unwrap().is_none());
        }
    }
}
