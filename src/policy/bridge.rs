//! Conversions from the facts other layers produce: the observed process
//! (`identity::ProcessFacts`), a verified named identity (`store::Identity`) and the
//! store's recorded classification (`store::Classification`).

use super::model::{Level, Login, NamedIdentity, Principal};
use crate::identity::ProcessFacts;
use crate::store::{Classification, Identity};

impl From<Classification> for Level {
    fn from(c: Classification) -> Level {
        match c {
            Classification::Low => Level::Low,
            Classification::LowMedium => Level::LowMedium,
            Classification::Medium => Level::Medium,
            Classification::MediumHigh => Level::MediumHigh,
            Classification::High => Level::High,
        }
    }
}

impl From<Level> for Classification {
    fn from(l: Level) -> Classification {
        match l {
            Level::Low => Classification::Low,
            Level::LowMedium => Classification::LowMedium,
            Level::Medium => Classification::Medium,
            Level::MediumHigh => Classification::MediumHigh,
            Level::High => Classification::High,
        }
    }
}

impl From<&Identity> for NamedIdentity {
    fn from(id: &Identity) -> NamedIdentity {
        NamedIdentity {
            name: id.name.clone(),
            roles: id.roles.clone(),
        }
    }
}

impl Principal {
    /// The principal of a session: the process facts observed at `C_Initialize`,
    /// the session's login state, and the named identity it logged in with.
    ///
    /// A process in a nested user namespace chose its own uid, groups, executable
    /// and host ([`ProcessFacts::namespaced`]): the principal then has none of them,
    /// so only `"*"`, login-state and named-identity matchers can apply to it.
    pub fn from_process(
        facts: &ProcessFacts,
        login: Login,
        identity: Option<NamedIdentity>,
    ) -> Principal {
        if facts.namespaced {
            return Principal {
                login,
                identity,
                ..Principal::default()
            };
        }
        Principal {
            uid: Some(facts.uid),
            user: facts.user.clone(),
            gids: facts.groups.clone(),
            groups: facts.group_names.clone(),
            exe: facts.exe.as_ref().map(|p| p.to_string_lossy().into_owned()),
            host: Some(facts.host.clone()).filter(|h| !h.is_empty()),
            login,
            identity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_classifications_correspond() {
        for l in Level::ALL {
            assert_eq!(Level::from(Classification::from(l)), l);
            assert_eq!(
                Classification::from(l).as_str().replace('-', ""),
                l.name().to_ascii_lowercase().replace('-', "")
            );
        }
    }

    #[test]
    fn principal_of_this_process() {
        let facts = ProcessFacts::observe();
        let p = Principal::from_process(&facts, Login::User, None);
        assert_eq!(p.uid, Some(facts.uid));
        assert!(p.gids.contains(&facts.gid));
        assert!(p.exe.is_some());
        assert_eq!(p.login, Login::User);
    }

    #[test]
    fn a_namespaced_process_has_no_forgeable_facts() {
        let facts = ProcessFacts {
            namespaced: true,
            ..ProcessFacts::observe()
        };
        let id = NamedIdentity {
            name: "alice".into(),
            roles: vec!["signers".into()],
        };
        let p = Principal::from_process(&facts, Login::User, Some(id.clone()));
        assert_eq!(p.uid, None);
        assert_eq!(p.user, None);
        assert!(p.gids.is_empty() && p.groups.is_empty());
        assert_eq!((p.exe, p.host), (None, None));
        assert_eq!((p.login, p.identity), (Login::User, Some(id)));
    }
}
