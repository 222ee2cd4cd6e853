//! [`EnvPolicy`]: which of our environment variables reach the child, and
//! which variables must not reach it at all.

use super::{Denied, PolicyContext, SpawnPolicy};
use crate::messages::SpawnRequest;

/// Filters the environment a child gets.
///
/// - [`allow`](Self::allow): only these variables pass through from *our*
///   (the registry's) environment. The policy sets
///   [`clear_env`](SpawnRequest::clear_env) and adds the allowed variables'
///   values from our environment, except those the request sets itself.
/// - [`remove`](Self::remove): these variables reach the child neither from
///   the request's own [`env`](SpawnRequest::env) nor from our environment.
///   When the request inherits our environment, the policy switches it to
///   `clear_env` and copies our environment without them.
///
/// A name ending in `*` matches every name with that prefix (`LC_*`,
/// `LD_*`); `*` alone matches every name. Names are case-sensitive.
///
/// Variables the request sets itself pass unless removed, whether or not
/// they are allowed: the allowlist governs what the child *inherits*, not
/// what the caller says. A request that already clears its environment
/// inherits nothing, so the allowlist adds nothing to it.
///
/// Caveats:
/// - Our variables whose name or value is not UTF-8 are not copied (a
///   request's environment is strings).
/// - After this policy the inherited variables are part of the request's
///   own `env`, so a later `EnvPolicy` in the chain sees them as set by the
///   request: its allowlist cannot narrow them further, its remove list
///   can.
/// - Our environment is read at each check, so it reflects changes made
///   since the policy was built.
///
/// ```
/// use procward::policy::{EnvPolicy, PolicyChain};
///
/// let chain = PolicyChain::new().with(
///     EnvPolicy::new()
///         .allow(["PATH", "HOME", "LANG", "LC_*"])
///         .remove(["LD_*"]),
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvPolicy {
    allow: Option<Vec<String>>,
    remove: Vec<String>,
}

impl EnvPolicy {
    /// A policy that changes nothing until told what to allow or remove.
    pub fn new() -> Self {
        EnvPolicy::default()
    }

    /// Lets only these of our variables through to the child (adds to any
    /// names allowed before). `allow([] as [&str; 0])` lets none through.
    pub fn allow<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allow
            .get_or_insert_with(Vec::new)
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// Keeps these variables from the child, wherever they come from.
    pub fn remove<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.remove.extend(names.into_iter().map(Into::into));
        self
    }

    /// The names allowed through from our environment; `None` lets all
    /// through.
    pub fn allowed(&self) -> Option<&[String]> {
        self.allow.as_deref()
    }

    /// The names removed.
    pub fn removed(&self) -> &[String] {
        &self.remove
    }

    fn passes(&self, name: &str) -> bool {
        let allowed = match &self.allow {
            Some(allow) => matches_any(allow, name),
            None => true,
        };
        allowed && !matches_any(&self.remove, name)
    }
}

impl SpawnPolicy for EnvPolicy {
    fn check(&self, request: &mut SpawnRequest, _: &PolicyContext<'_>) -> Result<(), Denied> {
        if self.allow.is_none() && self.remove.is_empty() {
            return Ok(());
        }
        request
            .env
            .retain(|(name, _)| !matches_any(&self.remove, name));
        if !request.clear_env {
            let inherited: Vec<(String, String)> = std::env::vars_os()
                .filter_map(|(name, value)| {
                    Some((name.into_string().ok()?, value.into_string().ok()?))
                })
                .filter(|(name, _)| self.passes(name))
                .filter(|(name, _)| !request.env.iter().any(|(set, _)| set == name))
                .collect();
            request.clear_env = true;
            // Before the request's own: those win anyway, and come last.
            request.env.splice(0..0, inherited);
        }
        Ok(())
    }
}

/// Whether `name` matches one of `patterns` (exact, or a prefix ending in
/// `*`).
fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => pattern == name,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::policy::scratch::CONTEXT;

    fn names(req: &SpawnRequest) -> Vec<&str> {
        req.env.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// A variable of ours that every test process has.
    fn ours() -> (String, String) {
        let value = std::env::var("PATH").expect("the tests run with a PATH");
        ("PATH".to_owned(), value)
    }

    #[test]
    fn patterns_match_exactly_or_by_prefix() {
        let patterns = vec!["HOME".to_owned(), "LC_*".to_owned()];
        assert!(matches_any(&patterns, "HOME"));
        assert!(!matches_any(&patterns, "HOMER"));
        assert!(!matches_any(&patterns, "home"));
        assert!(matches_any(&patterns, "LC_ALL"));
        assert!(matches_any(&patterns, "LC_"));
        assert!(!matches_any(&patterns, "LANG"));
        assert!(matches_any(&["*".to_owned()], "ANYTHING"));
    }

    #[test]
    fn no_lists_change_nothing() {
        let mut req = SpawnRequest::argv(["env"]).env("A", "1");
        let before = req.clone();
        EnvPolicy::new().check(&mut req, &CONTEXT).unwrap();
        assert_eq!(req, before);
    }

    #[test]
    fn allow_inherits_only_named_variables_of_ours() {
        let (name, value) = ours();
        let mut req = SpawnRequest::argv(["env"]).env("MINE", "x");
        EnvPolicy::new()
            .allow([name.as_str()])
            .check(&mut req, &CONTEXT)
            .unwrap();
        assert!(req.clear_env);
        assert_eq!(req.env, vec![(name, value), ("MINE".into(), "x".into())]);
    }

    #[test]
    fn the_requests_own_value_wins_over_ours() {
        let (name, _) = ours();
        let mut req = SpawnRequest::argv(["env"]).env(name.as_str(), "/mine");
        EnvPolicy::new()
            .allow([name.as_str()])
            .check(&mut req, &CONTEXT)
            .unwrap();
        assert_eq!(req.env, vec![(name, "/mine".to_owned())]);
    }

    #[test]
    fn a_cleared_request_inherits_nothing() {
        let (name, _) = ours();
        let mut req = SpawnRequest::argv(["env"]).clear_env().env("MINE", "x");
        EnvPolicy::new()
            .allow([name.as_str()])
            .check(&mut req, &CONTEXT)
            .unwrap();
        assert_eq!(names(&req), ["MINE"]);
    }

    #[test]
    fn remove_drops_the_requests_and_ours() {
        let (name, _) = ours();
        let mut req = SpawnRequest::argv(["env"])
            .env("LD_PRELOAD", "evil.so")
            .env("KEEP", "1")
            .env("LD_LIBRARY_PATH", "/evil");
        EnvPolicy::new()
            .remove(["LD_*", name.as_str()])
            .check(&mut req, &CONTEXT)
            .unwrap();
        assert!(req.clear_env, "must stop inheriting to drop ours");
        assert!(names(&req).contains(&"KEEP"));
        assert!(!names(&req).iter().any(|n| n.starts_with("LD_")), "{req:?}");
        assert!(!names(&req).contains(&name.as_str()), "{req:?}");
        // Everything else of ours is still there.
        let expected = std::env::vars_os()
            .filter_map(|(n, v)| Some((n.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(n, _)| n != &name && !n.starts_with("LD_") && n != "KEEP")
            .count();
        assert_eq!(req.env.len(), expected + 1);
    }

    #[test]
    fn remove_on_a_cleared_request_filters_its_env_only() {
        let mut req = SpawnRequest::argv(["env"])
            .clear_env()
            .env("SECRET", "s")
            .env("KEEP", "1");
        EnvPolicy::new()
            .remove(["SECRET"])
            .check(&mut req, &CONTEXT)
            .unwrap();
        assert_eq!(req.env, vec![("KEEP".to_owned(), "1".to_owned())]);
    }

    #[test]
    fn remove_beats_allow() {
        let (name, _) = ours();
        let mut req = SpawnRequest::argv(["env"]);
        EnvPolicy::new()
            .allow(["*"])
            .remove([name.as_str()])
            .check(&mut req, &CONTEXT)
            .unwrap();
        assert!(!names(&req).contains(&name.as_str()));
    }

    #[test]
    fn an_empty_allowlist_inherits_nothing() {
        let mut req = SpawnRequest::argv(["env"]).env("MINE", "x");
        EnvPolicy::new()
            .allow([] as [&str; 0])
            .check(&mut req, &CONTEXT)
            .unwrap();
        assert!(req.clear_env);
        assert_eq!(names(&req), ["MINE"]);
    }
}
