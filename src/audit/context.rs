//! Who is writing: host, pid, uid, user name and executable, computed once per
//! writer (and again in a forked child, whose pid differs) and pre-serialised, since
//! they are the same in every record a process writes.

use std::path::Path;

use serde::Serialize;

/// The process context of every record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    /// Host name (`uname -n`).
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Real user id.
    pub uid: u32,
    /// User name from `/etc/passwd`, when it has one (NSS-only users show by uid).
    pub user: Option<String>,
    /// The executable's path.
    pub exe: Option<String>,
}

impl ProcessInfo {
    /// This process, now.
    pub fn current() -> ProcessInfo {
        let uid = rustix::process::getuid().as_raw();
        ProcessInfo {
            host: rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
            pid: std::process::id(),
            uid,
            user: user_name(Path::new("/etc/passwd"), uid),
            exe: std::env::current_exe()
                .ok()
                .map(|p| p.display().to_string()),
        }
    }

    /// `"host":…,"pid":…,"uid":…,"user":…,"exe":…` without braces, to splice into
    /// every line.
    pub(crate) fn json_fields(&self) -> String {
        let object = serde_json::to_string(self).unwrap_or_else(|_| "{}".into());
        object
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or("")
            .to_owned()
    }
}

/// Reads the name of `uid` from a passwd-format file. The C library's `getpwuid_r`
/// would need `unsafe`; the local file answers for the accounts that run services.
fn user_name(passwd: &Path, uid: u32) -> Option<String> {
    let text = std::fs::read_to_string(passwd).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?.parse::<u32>().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_come_from_passwd() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("passwd");
        std::fs::write(
            &p,
            "root:x:0:0:root:/root:/bin/sh\nkw:x:1001:1001::/:/bin/false\n",
        )
        .unwrap();
        assert_eq!(user_name(&p, 0).as_deref(), Some("root"));
        assert_eq!(user_name(&p, 1001).as_deref(), Some("kw"));
        assert_eq!(user_name(&p, 7), None);
    }

    #[test]
    fn fields_splice_into_an_object() {
        let info = ProcessInfo {
            host: "h\"x".into(),
            pid: 1,
            uid: 2,
            user: None,
            exe: Some("/bin/a".into()),
        };
        let line = format!("{{{}}}", info.json_fields());
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["host"], "h\"x");
        assert_eq!(v["user"], serde_json::Value::Null);
        assert!(line.starts_with("{\"host\""));
    }

    #[test]
    fn current_process_is_described() {
        let me = ProcessInfo::current();
        assert_eq!(me.pid, std::process::id());
        assert!(!me.host.is_empty());
    }
}
