//! Who is calling: the facts about the calling process that the module can observe
//! itself (the policy's principals are built from these plus the PKCS#11 login state
//! and an optional named identity).
//!
//! Inside a user namespace other than the initial one, the uid, gid and groups the
//! kernel reports are whatever the process mapped (`unshare --user --map-group=GID`
//! needs no privilege), and with the mount and UTS namespaces that come with it the
//! executable path and host name are too. [`ProcessFacts::namespaced`] says so, and
//! the policy then takes none of those facts (`policy::bridge`).
//!
//! They are read once, when the module is initialised: a process's uid, groups,
//! executable and host do not change under a running application in practice, and
//! reading them per call would cost system calls on the hot path. A process that
//! changes its credentials re-initialises the module to be seen with the new ones.

use std::path::PathBuf;

use nix::unistd::{getegid, geteuid, getgroups, gethostname, Gid, Group, Uid, User};
use serde::Serialize;

/// The observable facts about the calling process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessFacts {
    /// Process id.
    pub pid: u32,
    /// Effective uid (the one the kernel checks for file access).
    pub uid: u32,
    /// The uid's user name, when the passwd database knows it.
    pub user: Option<String>,
    /// Effective gid.
    pub gid: u32,
    /// The primary and supplementary group ids.
    pub groups: Vec<u32>,
    /// Names of `groups`, where the group database knows them.
    pub group_names: Vec<String>,
    /// The executable's path (`/proc/self/exe`), if readable.
    pub exe: Option<PathBuf>,
    /// The host name.
    pub host: String,
    /// The process is not in the initial user namespace (or that could not be
    /// established): uid, groups, executable and host are the process's own choice.
    pub namespaced: bool,
}

impl ProcessFacts {
    /// Observes this process.
    pub fn observe() -> ProcessFacts {
        let uid = geteuid();
        let gid = getegid();
        let mut groups: Vec<Gid> = getgroups().unwrap_or_default();
        if !groups.contains(&gid) {
            groups.insert(0, gid);
        }
        let groups: Vec<u32> = groups.iter().map(|g| g.as_raw()).collect();
        ProcessFacts {
            pid: std::process::id(),
            uid: uid.as_raw(),
            user: user_name(uid),
            gid: gid.as_raw(),
            group_names: group_names(&groups),
            groups,
            exe: std::env::current_exe().ok(),
            host: host_name(),
            namespaced: !in_initial_user_namespace(),
        }
    }
}

/// Whether this process is in the initial user namespace: there, and only there,
/// `/proc/self/uid_map` and `gid_map` are the identity over the whole 32-bit range
/// (user_namespaces(7)). A nested namespace can map at most that range too, but
/// only onto ids of its parent, so an unreadable map or any other content counts
/// as nested (fail closed).
fn in_initial_user_namespace() -> bool {
    maps_are_initial(std::path::Path::new("/proc/self"))
}

/// Whether the process whose `/proc` directory is `proc` is in the initial user
/// namespace, by the rule of `in_initial_user_namespace`. Another process's maps
/// are shown in the reader's terms (user_namespaces(7)), so the rule holds for it
/// when the reader is in the initial namespace; a nested reader gets no such answer.
pub fn maps_are_initial(proc: &std::path::Path) -> bool {
    ["uid_map", "gid_map"]
        .iter()
        .all(|name| std::fs::read_to_string(proc.join(name)).is_ok_and(|map| is_identity_map(&map)))
}

/// The host name, or empty when it is not valid UTF-8.
pub fn host_name() -> String {
    gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// The names of `groups` the group database knows.
pub fn group_names(groups: &[u32]) -> Vec<String> {
    groups
        .iter()
        .filter_map(|g| {
            Group::from_gid(Gid::from_raw(*g))
                .ok()
                .flatten()
                .map(|g| g.name)
        })
        .collect()
}

/// `map` is the one line `0 0 4294967295`.
fn is_identity_map(map: &str) -> bool {
    let mut lines = map.lines().filter(|l| !l.trim().is_empty());
    let first: Vec<&str> = lines
        .next()
        .map_or(Vec::new(), |l| l.split_whitespace().collect());
    lines.next().is_none() && first == ["0", "0", "4294967295"]
}

/// The uid's user name, when the passwd database knows it.
pub fn user_name(uid: Uid) -> Option<String> {
    User::from_uid(uid).ok().flatten().map(|u| u.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_full_identity_map_is_the_initial_namespace() {
        assert!(is_identity_map("         0          0 4294967295\n"));
        assert!(!is_identity_map("         0          0          1\n"));
        assert!(!is_identity_map("      4244          0          1\n"));
        assert!(!is_identity_map("0 0 4294967295\n1 1 1\n"));
        assert!(!is_identity_map(""));
    }

    #[test]
    fn observes_this_process() {
        let facts = ProcessFacts::observe();
        assert_eq!(facts.pid, std::process::id());
        assert_eq!(facts.uid, geteuid().as_raw());
        assert!(facts.groups.contains(&facts.gid));
        let exe = facts.exe.expect("exe");
        assert_eq!(exe, std::env::current_exe().unwrap());
        assert!(!facts.host.is_empty());
        // The suite runs in the initial user namespace; a nested one is tested by
        // tests/policy_enforce_userns.rs.
        assert!(!facts.namespaced);
        if facts.uid == 0 {
            assert_eq!(facts.user.as_deref(), Some("root"));
        }
    }
}
