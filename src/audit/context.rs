//! Who is writing: host, pid, uid, user name and executable, computed once per
//! writer (and again in a forked child, whose pid differs) and pre-serialised, since
//! they are the same in every record a process writes.

use serde::Serialize;

use crate::identity::ProcessFacts;

/// The process context of every record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    /// Host name (`uname -n`).
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Effective user id.
    pub uid: u32,
    /// The uid's user name, when the user database knows it.
    pub user: Option<String>,
    /// The executable's path.
    pub exe: Option<String>,
    /// The process is in a nested user namespace: uid, user and exe above are what
    /// it chose to map (`identity::ProcessFacts::namespaced`). Written only when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub userns: bool,
}

impl ProcessInfo {
    /// This process, now (the facts `identity` observes for policy too).
    pub fn current() -> ProcessInfo {
        ProcessInfo::from(&ProcessFacts::observe())
    }

    /// The user as a record's `actor` names it: the user name, else `uid N`.
    pub fn actor_name(self) -> String {
        self.user.unwrap_or_else(|| format!("uid {}", self.uid))
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

impl From<&ProcessFacts> for ProcessInfo {
    fn from(facts: &ProcessFacts) -> ProcessInfo {
        ProcessInfo {
            host: facts.host.clone(),
            pid: facts.pid,
            uid: facts.uid,
            user: facts.user.clone(),
            exe: facts.exe.as_ref().map(|p| p.display().to_string()),
            userns: facts.namespaced,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_splice_into_an_object() {
        let info = ProcessInfo {
            host: "h\"x".into(),
            pid: 1,
            uid: 2,
            user: None,
            exe: Some("/bin/a".into()),
            userns: false,
        };
        let line = format!("{{{}}}", info.json_fields());
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["host"], "h\"x");
        assert_eq!(v["user"], serde_json::Value::Null);
        assert!(line.starts_with("{\"host\""));
        assert!(!line.contains("userns"));
        let nested = ProcessInfo {
            userns: true,
            ..info
        };
        assert!(nested.json_fields().ends_with(",\"userns\":true"));
    }

    #[test]
    fn current_process_is_described() {
        let me = ProcessInfo::current();
        assert_eq!(me.pid, std::process::id());
        assert!(!me.host.is_empty());
    }
}
