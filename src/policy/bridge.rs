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
    pub fn from_process(
        facts: &ProcessFacts,
        login: Login,
        identity: Option<NamedIdentity>,
    ) -> Principal {
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
}
