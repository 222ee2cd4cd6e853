//! [`PolicyConfig`]: a policy profile as a configuration file describes it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{
    ConcurrencyLimit, CwdPolicy, EnvPolicy, PolicyChain, ProgramAllowlist, ProgramDenylist,
    ShellPolicy,
};

/// The description of one policy profile, as read from a configuration
/// file with serde. Every field is optional; a missing field adds no
/// policy, so the empty description allows everything. Unknown fields are
/// an error, so that a misspelt restriction is not silently ignored.
///
/// [`build`](Self::build) turns it into a [`PolicyChain`] of the built-in
/// policies in this fixed order:
///
/// 1. [`ConcurrencyLimit`] (`max_running`, `max_running_per_owner`): the
///    cheapest refusal first.
/// 2. [`ShellPolicy`] (`allow_shell`).
/// 3. [`EnvPolicy`] (`env_allow`, `env_remove`), then
/// 4. [`CwdPolicy`] (`cwd_roots`): both rewrite the `PATH` and cwd that the
///    program is resolved against, so they come before the program lists.
/// 5. [`ProgramDenylist`] (`deny_programs`), then
/// 6. [`ProgramAllowlist`] (`allow_programs`): resolve the program in the
///    environment and directory it will really have, and pin `argv[0]`.
///
/// A list given empty is not the same as a list left out: `allow_programs:
/// []` denies every program, `env_allow: []` inherits no variable, and
/// `cwd_roots: []` denies every spawn.
///
/// ```
/// use procward::policy::PolicyConfig;
///
/// let config: PolicyConfig = serde_json::from_str(r#"{
///     "allow_programs": ["/bin/echo", "/bin/cat"],
///     "allow_shell": false,
///     "env_allow": ["PATH", "LANG"],
///     "env_remove": ["LD_*"],
///     "cwd_roots": ["/tmp"],
///     "max_running": 16,
///     "max_running_per_owner": 2
/// }"#).unwrap();
/// let chain = config.build();
/// assert!(!chain.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicyConfig {
    /// Only these programs may run ([`ProgramAllowlist`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_programs: Option<Vec<PathBuf>>,
    /// These programs may not run ([`ProgramDenylist`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_programs: Option<Vec<PathBuf>>,
    /// Whether shell commands may run ([`ShellPolicy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_shell: Option<bool>,
    /// Only these of the registry's variables reach the child
    /// ([`EnvPolicy::allow`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_allow: Option<Vec<String>>,
    /// These variables never reach the child ([`EnvPolicy::remove`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_remove: Option<Vec<String>>,
    /// The cwd must lie under one of these; the first is the default
    /// ([`CwdPolicy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd_roots: Option<Vec<PathBuf>>,
    /// At most this many processes of the registry running at once
    /// ([`ConcurrencyLimit::overall`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running: Option<usize>,
    /// At most this many processes of one owner running at once
    /// ([`ConcurrencyLimit::per_owner`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running_per_owner: Option<usize>,
}

impl PolicyConfig {
    /// The chain of built-in policies this description asks for, in the
    /// order given in the type's docs.
    pub fn build(&self) -> PolicyChain {
        let mut chain = PolicyChain::new();
        if self.max_running.is_some() || self.max_running_per_owner.is_some() {
            let mut limit = ConcurrencyLimit::new();
            if let Some(max) = self.max_running {
                limit = limit.overall(max);
            }
            if let Some(max) = self.max_running_per_owner {
                limit = limit.per_owner(max);
            }
            chain = chain.with(limit);
        }
        if let Some(allowed) = self.allow_shell {
            chain = chain.with(ShellPolicy::new(allowed));
        }
        if self.env_allow.is_some() || self.env_remove.is_some() {
            let mut env = EnvPolicy::new();
            if let Some(names) = &self.env_allow {
                env = env.allow(names.iter().cloned());
            }
            if let Some(names) = &self.env_remove {
                env = env.remove(names.iter().cloned());
            }
            chain = chain.with(env);
        }
        if let Some(roots) = &self.cwd_roots {
            chain = chain.with(CwdPolicy::new(roots.iter().cloned()));
        }
        if let Some(programs) = &self.deny_programs {
            chain = chain.with(ProgramDenylist::new(programs.iter().cloned()));
        }
        if let Some(programs) = &self.allow_programs {
            chain = chain.with(ProgramAllowlist::new(programs.iter().cloned()));
        }
        chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Command, SpawnRequest};
    use crate::policy::SpawnPolicy;
    use crate::policy::scratch::Scratch;

    use crate::policy::scratch::CONTEXT;

    fn parse(json: &str) -> PolicyConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_empty_description_allows_everything() {
        let config = parse("{}");
        assert_eq!(config, PolicyConfig::default());
        assert!(config.build().is_empty());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err =
            serde_json::from_str::<PolicyConfig>(r#"{"allow_program": ["/bin/sh"]}"#).unwrap_err();
        assert!(err.to_string().contains("allow_program"), "{err}");
    }

    #[test]
    fn builds_one_policy_per_concern() {
        let config = parse(
            r#"{"allow_programs": ["/bin/sh"], "deny_programs": [], "allow_shell": true,
                "env_allow": ["PATH"], "env_remove": ["LD_*"], "cwd_roots": ["/"],
                "max_running": 3, "max_running_per_owner": 1}"#,
        );
        let chain = format!("{:?}", config.build());
        let names = [
            "ConcurrencyLimit",
            "ShellPolicy",
            "EnvPolicy",
            "CwdPolicy",
            "ProgramDenylist",
            "ProgramAllowlist",
        ];
        let at: Vec<usize> = names.iter().filter_map(|name| chain.find(name)).collect();
        assert_eq!(at.len(), names.len(), "{chain}");
        assert!(at.is_sorted(), "built out of order: {chain}");
        let round_trip: PolicyConfig =
            serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(round_trip, config);
    }

    #[test]
    fn env_and_cwd_apply_before_the_program_is_resolved() {
        // The program exists only in the cwd root's PATH directory, which
        // the request reaches only through the rewrites before the lists.
        let scratch = Scratch::new("config-order");
        let tool = scratch.executable("bin/tool");
        let config = PolicyConfig {
            env_allow: Some(vec![]),
            cwd_roots: Some(vec![scratch.path().to_owned()]),
            allow_programs: Some(vec![tool.clone()]),
            ..PolicyConfig::default()
        };
        let mut req = SpawnRequest::argv(["./bin/tool"]);
        config.build().check(&mut req, &CONTEXT).unwrap();
        assert_eq!(
            req.command,
            Command::Argv(vec![tool.to_str().unwrap().to_owned()])
        );
        assert_eq!(req.cwd.as_deref(), Some(scratch.path()));
        assert!(req.clear_env && req.env.is_empty());
    }

    #[test]
    fn the_first_denial_is_the_cheapest() {
        let config = PolicyConfig {
            max_running: Some(0),
            allow_programs: Some(vec![]),
            ..PolicyConfig::default()
        };
        let denied = config
            .build()
            .check(&mut SpawnRequest::argv(["sh"]), &CONTEXT)
            .unwrap_err();
        assert!(denied.reason.contains("overall"), "{denied:?}");
    }
}
