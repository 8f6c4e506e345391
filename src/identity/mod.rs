//! Who is calling: the facts about the calling process that the module can observe
//! itself (issue 3's principals are built from these plus the PKCS#11 login state
//! and an optional named identity).
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
        let group_names = groups
            .iter()
            .filter_map(|g| Group::from_gid(*g).ok().flatten().map(|g| g.name))
            .collect();
        ProcessFacts {
            pid: std::process::id(),
            uid: uid.as_raw(),
            user: user_name(uid),
            gid: gid.as_raw(),
            groups: groups.iter().map(|g| g.as_raw()).collect(),
            group_names,
            exe: std::env::current_exe().ok(),
            host: gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
        }
    }
}

fn user_name(uid: Uid) -> Option<String> {
    User::from_uid(uid).ok().flatten().map(|u| u.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observes_this_process() {
        let facts = ProcessFacts::observe();
        assert_eq!(facts.pid, std::process::id());
        assert_eq!(facts.uid, geteuid().as_raw());
        assert!(facts.groups.contains(&facts.gid));
        let exe = facts.exe.expect("exe");
        assert_eq!(exe, std::env::current_exe().unwrap());
        assert!(!facts.host.is_empty());
        if facts.uid == 0 {
            assert_eq!(facts.user.as_deref(), Some("root"));
        }
    }
}
