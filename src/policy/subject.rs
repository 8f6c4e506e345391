//! Resolving a caller against one policy generation: its roles (from principal
//! matchers and its named identity's store roles), and per rule and grant whether
//! it applies and with which clearance, computed once so that each request only
//! tests what depends on the key, mechanism and time.

use std::fmt;

use super::compile::{CPrincipal, Policy, RoleSel};
use super::model::{Level, Principal};

/// A caller resolved against one policy generation. Cheap to keep per session;
/// re-resolve after a login-state change (and it is redone automatically when the
/// policy was reloaded since).
#[derive(Clone)]
pub struct Subject {
    pub(super) generation: u64,
    pub(super) principal: Principal,
    pub(super) roles: Box<[u16]>,
    /// Per rule: 0 = does not apply to this caller, else 1 + clearance.
    pub(super) rule_levels: Box<[u8]>,
    /// Per grant: 0 = not a grantee (or conditions fail), else 1 + clearance.
    pub(super) grant_levels: Box<[u8]>,
    /// For the owners of grants this caller may use: the owner's own rule levels
    /// under this caller's facts.
    pub(super) owners: Box<[(u16, Box<[u8]>)]>,
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subject")
            .field("generation", &self.generation)
            .field("principal", &self.principal)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl Subject {
    /// The facts it was resolved from.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The policy generation it was resolved under.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Names of the roles held.
    pub fn role_names<'p>(&self, policy: &'p Policy) -> Vec<&'p str> {
        self.roles
            .iter()
            .filter_map(|&r| policy.roles.get(usize::from(r)))
            .map(|r| r.name.as_str())
            .collect()
    }
}

const fn byte_of(level: Level) -> u8 {
    level as u8 + 1
}

impl Policy {
    /// Resolves a caller: roles from principal matchers and from the named
    /// identity's store roles, then per rule and grant whether it applies.
    pub fn resolve(&self, principal: &Principal) -> Subject {
        let mut roles: Vec<u16> = (0u16..)
            .zip(&self.roles)
            .filter(|(_, role)| {
                role.everyone
                    || role
                        .members
                        .iter()
                        .filter_map(|&m| self.principals.get(m))
                        .any(|m| principal_matches(m, principal))
            })
            .map(|(i, _)| i)
            .collect();
        if let Some(identity) = &principal.identity {
            for name in &identity.roles {
                if let Some(i) = self.roles.iter().position(|r| &r.name == name) {
                    roles.extend(u16::try_from(i).ok());
                }
            }
        }
        roles.sort_unstable();
        roles.dedup();
        let rule_levels = self.levels_for(&roles, principal);
        let mut grant_levels = vec![0u8; self.grants.len()];
        let mut owners: Vec<(u16, Box<[u8]>)> = Vec::new();
        for (g, grant) in self.grants.iter().enumerate() {
            let held: Option<Level> = grant
                .to
                .iter()
                .filter(|r| roles.contains(r))
                .filter_map(|&r| self.roles.get(usize::from(r)).map(|r| r.clearance))
                .max();
            if let (Some(level), true) = (held, grant.cond.static_match(principal)) {
                if let Some(slot) = grant_levels.get_mut(g) {
                    *slot = byte_of(level);
                }
                if !owners.iter().any(|(o, _)| *o == grant.owner) {
                    owners.push((grant.owner, self.levels_for(&[grant.owner], principal)));
                }
            }
        }
        Subject {
            generation: self.generation,
            principal: principal.clone(),
            roles: roles.into(),
            rule_levels,
            grant_levels: grant_levels.into(),
            owners: owners.into(),
        }
    }

    fn clearance_of(&self, roles: &[u16]) -> Option<Level> {
        roles
            .iter()
            .filter_map(|&r| self.roles.get(usize::from(r)).map(|r| r.clearance))
            .max()
    }

    fn levels_for(&self, roles: &[u16], principal: &Principal) -> Box<[u8]> {
        self.rules
            .iter()
            .map(|rule| {
                if !rule.cond.static_match(principal) {
                    return 0;
                }
                let clearance = match &rule.roles {
                    RoleSel::Any => Some(
                        self.clearance_of(roles)
                            .map_or(self.default_clearance, |c| c.max(self.default_clearance)),
                    ),
                    RoleSel::Some(rs) => {
                        let both: Vec<u16> =
                            rs.iter().copied().filter(|r| roles.contains(r)).collect();
                        self.clearance_of(&both)
                    }
                };
                clearance.map_or(0, byte_of)
            })
            .collect()
    }
}

fn principal_matches(m: &CPrincipal, p: &Principal) -> bool {
    fn any_in<T: PartialEq>(want: &Option<Box<[T]>>, have: &[T]) -> bool {
        want.as_ref()
            .is_none_or(|w| have.iter().any(|h| w.contains(h)))
    }
    any_in(&m.uid, p.uid.as_slice())
        && any_in(&m.user, p.user.as_slice())
        && any_in(&m.gid, &p.gids)
        && any_in(&m.group, &p.groups)
        && m.exe
            .as_ref()
            .is_none_or(|g| p.exe.as_deref().is_some_and(|e| g.is_match(e)))
        && m.host
            .as_ref()
            .is_none_or(|g| p.host.as_deref().is_some_and(|h| g.is_match(h)))
        && m.login.is_none_or(|mask| mask & p.login.bit() != 0)
        && m.identity
            .as_ref()
            .is_none_or(|w| p.identity.as_ref().is_some_and(|id| w.contains(&id.name)))
}
