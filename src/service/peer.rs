//! Who is on the other end of an accepted connection, from the kernel and the
//! system's databases, never from anything the client sends.
//!
//! - uid, gid and pid: `SO_PEERCRED`, the credentials the kernel recorded when the
//!   peer called `connect` (unix(7)), translated into the service's user namespace.
//! - groups: the group database's for that uid (`getgrouplist` of its user name and
//!   the gid), not the peer process's own supplementary set, which the kernel does
//!   not report over the socket.
//! - executable: `/proc/PID/exe`, read while a pidfd of the connecting process is
//!   held, and taken only if the pidfd then shows the process not exited. A pidfd
//!   refers to one process for good, and a live process keeps its pid, so the link
//!   read was that process's. The pidfd is the kernel's for the socket's peer
//!   (`SO_PEERPIDFD`, Linux 6.5), so no pid is looked up; on a kernel without it,
//!   `pidfd_open` of the `SO_PEERCRED` pid, which a peer that exits and whose pid is
//!   taken by a new process before that call would defeat.
//! - namespaced: the peer's uid and gid maps, as [`identity::maps_are_initial`]
//!   reads them, under the same pidfd check (an exited peer counts as namespaced).
//!
//! A peer whose pid the service's pid namespace cannot see has pid 0: it has no
//! pidfd, no executable, and counts as namespaced.
//!
//! `/proc/PID/exe` of another user's process needs ptrace read access
//! (proc(5)); a service without it (not root, no `CAP_SYS_PTRACE`) learns no
//! executable for other users' processes.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::socket::getsockopt;
use nix::sys::socket::sockopt::{PeerCredentials, PeerPidfd};
use nix::unistd::{getgrouplist, Gid, Uid};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{pidfd_open, Pid, PidfdFlags};

use crate::identity::{self, ProcessFacts};

/// The kernel's record of the peer: pid, uid and gid as `SO_PEERCRED` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// Process id of the process that connected.
    pub pid: u32,
    /// Its effective uid at `connect`.
    pub uid: u32,
    /// Its effective gid at `connect`.
    pub gid: u32,
}

/// `SO_PEERCRED` of a connected Unix stream socket.
pub fn credentials(stream: &UnixStream) -> std::io::Result<Credentials> {
    let cred = getsockopt(stream, PeerCredentials).map_err(std::io::Error::from)?;
    Ok(Credentials {
        pid: u32::try_from(cred.pid()).unwrap_or(0),
        uid: cred.uid(),
        gid: cred.gid(),
    })
}

/// A pidfd of the process that connected `stream`, whose `SO_PEERCRED` pid is
/// `pid`; `None` when that process is gone (or invisible: pid 0).
pub fn pidfd(stream: &UnixStream, pid: u32) -> Option<OwnedFd> {
    match getsockopt(stream, PeerPidfd) {
        Ok(fd) => Some(fd),
        Err(Errno::ENOPROTOOPT) => pidfd_by_pid(pid),
        Err(_) => None,
    }
}

/// A pidfd of whatever process has `pid` at the time of the call.
pub fn pidfd_by_pid(pid: u32) -> Option<OwnedFd> {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok())
}

/// The facts about the peer whose kernel credentials are `cred`, its process held
/// by `pidfd` (`None`: gone).
pub fn facts(cred: Credentials, pidfd: Option<OwnedFd>) -> ProcessFacts {
    let uid = Uid::from_raw(cred.uid);
    let user = identity::user_name(uid);
    let groups = groups_of(user.as_deref(), cred.gid);
    let (exe, initial_ns) = match (pidfd, cred.pid) {
        (Some(pidfd), pid @ 1..) => process_view(&pidfd, pid),
        _ => (None, false),
    };
    ProcessFacts {
        pid: cred.pid,
        uid: cred.uid,
        user,
        gid: cred.gid,
        group_names: identity::group_names(&groups),
        groups,
        exe,
        host: identity::host_name(),
        namespaced: !initial_ns,
    }
}

/// The facts of the peer of `stream`.
pub fn of_stream(stream: &UnixStream) -> std::io::Result<ProcessFacts> {
    let cred = credentials(stream)?;
    Ok(facts(cred, pidfd(stream, cred.pid)))
}

/// The gid and the database's supplementary groups of `user`, the gid first.
fn groups_of(user: Option<&str>, gid: u32) -> Vec<u32> {
    let primary = Gid::from_raw(gid);
    let listed = user
        .and_then(|name| CString::new(name).ok())
        .and_then(|name| getgrouplist(&name, primary).ok())
        .unwrap_or_default();
    let mut groups = vec![gid];
    for g in listed {
        if !groups.contains(&g.as_raw()) {
            groups.push(g.as_raw());
        }
    }
    groups
}

/// The executable of process `pid` (held by `pidfd`) and whether it is in the
/// initial user namespace, both read while the pidfd shows the process alive:
/// `(None, false)` for a process that exits before the reads are done.
fn process_view(pidfd: &OwnedFd, pid: u32) -> (Option<PathBuf>, bool) {
    let proc = Path::new("/proc").join(pid.to_string());
    let exe = std::fs::read_link(proc.join("exe")).ok();
    let initial_ns = identity::maps_are_initial(&proc);
    if alive(pidfd) {
        (exe, initial_ns)
    } else {
        (None, false)
    }
}

/// Whether the pidfd's process has not exited: a pidfd becomes readable when its
/// process exits, zombies included (pidfd_open(2)). A failed poll counts as exited.
fn alive(pidfd: &impl AsFd) -> bool {
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&zero)) {
        Ok(0) => true,
        Ok(_) => fds[0].revents().is_empty(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn a_socketpair_peer_is_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        if !matches!(getsockopt(&a, PeerPidfd), Err(Errno::ENOPROTOOPT)) {
            assert!(pidfd(&a, std::process::id()).is_some(), "SO_PEERPIDFD");
        }
        let facts = of_stream(&a).unwrap();
        let me = ProcessFacts::observe();
        assert_eq!(facts.pid, std::process::id());
        assert_eq!(facts.uid, me.uid);
        assert_eq!(facts.gid, me.gid);
        assert_eq!(facts.user, me.user);
        assert_eq!(facts.groups.first(), Some(&me.gid));
        assert_eq!(facts.exe, Some(std::env::current_exe().unwrap()));
        assert!(!facts.namespaced);
        assert_eq!(facts.host, me.host);
    }

    const CONNECT_TO: &str = "KEYWARDEN_TEST_PEER_CONNECT";

    /// In the child of `a_client_that_exited_before_accept_has_no_executable`:
    /// connects to the socket it names and exits; elsewhere nothing.
    #[test]
    fn helper_connects_and_exits() {
        if let Some(path) = std::env::var_os(CONNECT_TO) {
            let s = UnixStream::connect(path).unwrap();
            std::mem::forget(s);
        }
    }

    #[test]
    fn a_client_that_exited_before_accept_has_no_executable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "service::peer::tests::helper_connects_and_exits"])
            .env(CONNECT_TO, &path)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(child.wait().unwrap().success());
        let (stream, _) = listener.accept().unwrap();
        let cred = credentials(&stream).unwrap();
        assert_eq!(cred.pid, pid);
        let facts = of_stream(&stream).unwrap();
        assert_eq!(facts.exe, None);
        assert!(facts.namespaced);
    }

    fn sleeper() -> std::process::Child {
        Command::new("sleep")
            .arg("100")
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn cred_of(child: &std::process::Child) -> Credentials {
        Credentials {
            pid: child.id(),
            uid: Uid::effective().as_raw(),
            gid: Gid::effective().as_raw(),
        }
    }

    #[test]
    fn a_live_child_has_its_executable() {
        let mut child = sleeper();
        let facts = facts(cred_of(&child), pidfd_by_pid(child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        let exe = facts.exe.expect("exe of a live child");
        assert!(exe.ends_with("sleep"), "{exe:?}");
        assert!(!facts.namespaced);
    }

    #[test]
    fn a_peer_that_exited_and_was_reaped_has_no_executable() {
        let mut child = sleeper();
        let cred = cred_of(&child);
        child.kill().unwrap();
        child.wait().unwrap();
        let facts = facts(cred, pidfd_by_pid(cred.pid));
        assert_eq!(facts.exe, None);
        assert!(facts.namespaced, "an exited peer fails closed");
        assert_eq!(facts.uid, cred.uid, "the kernel's uid is kept");
    }

    #[test]
    fn a_peer_that_exited_unreaped_has_no_executable() {
        let mut child = sleeper();
        let cred = cred_of(&child);
        let pidfd = pidfd_by_pid(cred.pid).unwrap();
        child.kill().unwrap();
        // A zombie until reaped: /proc/PID still exists, the pidfd is readable.
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        poll(&mut fds, None).unwrap();
        assert_eq!(facts(cred, Some(pidfd)).exe, None);
        child.wait().unwrap();
    }
}
