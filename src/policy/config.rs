//! [`PolicyConfig`]: a policy profile as a configuration file describes it.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    ConcurrencyLimit, CwdPolicy, EnvPolicy, LimitCeilings, PolicyChain, ProgramAllowlist,
    ProgramDenylist, Rlimit, ShellPolicy, TreeLimits,
};
use crate::messages::DEFAULT_OUTPUT_CAP;

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
/// 2. [`LimitCeilings`] (`max_timeout_ms`, `max_output_cap`,
///    `max_cpu_seconds`, `max_address_space_bytes`, `max_open_files`,
///    `max_processes`, `max_core_bytes`, `min_nice`, `required_umask`): a
///    request may only tighten these, and one that leaves a field out gets
///    the ceiling.
///    Then [`TreeLimits`] (`memory_max`, `pids_max`, `cpu_max`): the same,
///    for the tree's cgroup.
/// 3. [`ShellPolicy`] (`allow_shell`).
/// 4. [`EnvPolicy`] (`env_allow`, `env_remove`), then
/// 5. [`CwdPolicy`] (`cwd_roots`): both rewrite the `PATH` and cwd that the
///    program is resolved against, so they come before the program lists.
/// 6. [`ProgramDenylist`] (`deny_programs`), then
/// 7. [`ProgramAllowlist`] (`allow_programs`): resolve the program in the
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
    /// The longest spawn timeout, in ms; a spawn without one gets it
    /// ([`LimitCeilings::max_timeout`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_timeout_ms: Option<u64>,
    /// The largest capture cap per stream, in bytes
    /// ([`LimitCeilings::max_output_cap`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_cap: Option<usize>,
    /// The largest `limits.cpu_seconds` ([`LimitCeilings::max_rlimit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cpu_seconds: Option<u64>,
    /// The largest `limits.address_space_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_address_space_bytes: Option<u64>,
    /// The largest `limits.open_files`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_files: Option<u64>,
    /// The largest `limits.max_processes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_processes: Option<u64>,
    /// The largest `limits.core_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_core_bytes: Option<u64>,
    /// The lowest `limits.nice` (-20..=19) ([`LimitCeilings::min_nice`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_nice: Option<i32>,
    /// Umask bits (0..=0o777) every spawn keeps
    /// ([`LimitCeilings::required_umask`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_umask: Option<u32>,
    /// The tree's cgroup `memory.max` in bytes ([`TreeLimits`]): needs
    /// cgroup containment with the memory controller, else every spawn
    /// under it is denied (`limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<u64>,
    /// The tree's cgroup `pids.max` ([`TreeLimits`]), likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u64>,
    /// The tree's cgroup `cpu.max` ([`TreeLimits`]), likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_max: Option<crate::messages::CpuMax>,
}

impl PolicyConfig {
    /// The chain of built-in policies this description asks for, in the
    /// order given in the type's docs, for a registry whose default capture
    /// cap is [`DEFAULT_OUTPUT_CAP`].
    pub fn build(&self) -> PolicyChain {
        self.build_with(self.ceilings(DEFAULT_OUTPUT_CAP))
    }

    /// Checks the values serde cannot: `min_nice` within -20..=19 and
    /// `required_umask` at most 0o777.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(nice) = self.min_nice
            && !(-20..=19).contains(&nice)
        {
            return Err(format!("min_nice {nice} is outside -20..=19"));
        }
        if let Some(mask) = self.required_umask
            && mask > 0o777
        {
            return Err(format!("required_umask {mask:#o} is above 0o777"));
        }
        Ok(())
    }

    /// The ceilings this description sets, for a registry whose default
    /// capture cap is `default_output_cap`.
    pub fn ceilings(&self, default_output_cap: usize) -> LimitCeilings {
        let mut ceilings = LimitCeilings::new().default_output_cap(default_output_cap);
        if let Some(ms) = self.max_timeout_ms {
            ceilings = ceilings.max_timeout(Duration::from_millis(ms));
        }
        if let Some(bytes) = self.max_output_cap {
            ceilings = ceilings.max_output_cap(bytes);
        }
        for (rlimit, max) in [
            (Rlimit::CpuSeconds, self.max_cpu_seconds),
            (Rlimit::AddressSpaceBytes, self.max_address_space_bytes),
            (Rlimit::OpenFiles, self.max_open_files),
            (Rlimit::MaxProcesses, self.max_processes),
            (Rlimit::CoreBytes, self.max_core_bytes),
        ] {
            if let Some(max) = max {
                ceilings = ceilings.max_rlimit(rlimit, max);
            }
        }
        if let Some(nice) = self.min_nice {
            ceilings = ceilings.min_nice(nice);
        }
        if let Some(bits) = self.required_umask {
            ceilings = ceilings.required_umask(bits);
        }
        ceilings
    }

    /// The chain this description asks for, with `ceilings` in place of
    /// its own (a server merges a profile's with its base policy's).
    pub fn build_with(&self, ceilings: LimitCeilings) -> PolicyChain {
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
        if !ceilings.is_empty() {
            chain = chain.with(ceilings);
        }
        let mut tree = TreeLimits::new();
        if let Some(bytes) = self.memory_max {
            tree = tree.memory_max(bytes);
        }
        if let Some(max) = self.pids_max {
            tree = tree.pids_max(max);
        }
        if let Some(cpu) = self.cpu_max {
            tree = tree.cpu_max(cpu);
        }
        if !tree.is_empty() {
            chain = chain.with(tree);
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
                "max_running": 3, "max_running_per_owner": 1, "max_timeout_ms": 5,
                "max_output_cap": 10, "max_cpu_seconds": 1, "max_address_space_bytes": 1,
                "max_open_files": 1, "max_processes": 1, "max_core_bytes": 0, "min_nice": 0,
                "required_umask": 18}"#,
        );
        let chain = format!("{:?}", config.build());
        let names = [
            "ConcurrencyLimit",
            "LimitCeilings",
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
    fn ceilings_are_validated() {
        assert!(parse(r#"{"min_nice": -21}"#).validate().is_err());
        assert!(parse(r#"{"required_umask": 512}"#).validate().is_err());
        assert!(
            parse(r#"{"min_nice": 0, "required_umask": 511}"#)
                .validate()
                .is_ok()
        );
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
