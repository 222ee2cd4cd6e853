//! Spawn policy: the gate every spawn request passes before anything is
//! started. A [`SpawnPolicy`] sees the whole request and its context, and
//! either allows it (possibly rewriting it: adding env, forcing a cwd,
//! resolving the program) or denies it with a reason.

use std::fmt;
use std::sync::Arc;

pub use crate::error::DenyRule;
use crate::messages::SpawnRequest;

/// What a policy knows besides the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicyContext<'a> {
    /// The request's owner key, if any.
    pub owner: Option<&'a str>,
    /// Processes of this registry running now (before this spawn).
    pub running_total: usize,
    /// Processes of this owner running now (before this spawn).
    pub running_of_owner: usize,
}

/// A denial: which rule refused the request and why. Becomes
/// [`Error::PolicyDenied`](crate::Error::PolicyDenied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// Which kind of rule refused it.
    pub rule: DenyRule,
    /// What the policy refused, for the caller to read.
    pub reason: String,
}

impl Denied {
    /// A denial by a rule of `rule`'s kind, with this reason.
    pub fn because(rule: DenyRule, reason: impl Into<String>) -> Self {
        Denied {
            rule,
            reason: reason.into(),
        }
    }

    /// A denial with this reason, by a rule of kind [`DenyRule::Other`]
    /// (for policies of your own).
    pub fn new(reason: impl Into<String>) -> Self {
        Denied::because(DenyRule::Other, reason)
    }
}

/// A gate for spawn requests. Implementations must not block: they run in
/// the registry actor's handler.
pub trait SpawnPolicy: fmt::Debug + Send + Sync + 'static {
    /// Allows `request` (after rewriting it as needed) or denies it.
    fn check(&self, request: &mut SpawnRequest, context: &PolicyContext<'_>) -> Result<(), Denied>;
}

/// Policies applied in order; the first denial wins, and each policy sees
/// the request as the ones before it rewrote it. The empty chain allows
/// everything.
#[derive(Debug, Clone, Default)]
pub struct PolicyChain(Vec<Arc<dyn SpawnPolicy>>);

impl PolicyChain {
    /// A chain of no policies: allows everything.
    pub fn new() -> Self {
        PolicyChain(Vec::new())
    }

    /// Appends a policy to the chain.
    pub fn with(mut self, policy: impl SpawnPolicy) -> Self {
        self.0.push(Arc::new(policy));
        self
    }

    /// Whether the chain has no policy.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl SpawnPolicy for PolicyChain {
    fn check(&self, request: &mut SpawnRequest, context: &PolicyContext<'_>) -> Result<(), Denied> {
        self.0
            .iter()
            .try_for_each(|policy| policy.check(request, context))
    }
}

/// Two chains are equal when they hold the same policies (the same `Arc`s).
impl PartialEq for PolicyChain {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl Eq for PolicyChain {}

mod allowlist;
mod ceilings;
mod concurrency;
mod config;
mod cwd;
mod denylist;
mod env;
mod profile;
mod resolve;
#[cfg(test)]
mod scratch;
mod shell;
mod tree_limits;

pub use allowlist::ProgramAllowlist;
pub use ceilings::{LimitCeilings, Rlimit};
pub use concurrency::ConcurrencyLimit;
pub use config::PolicyConfig;
pub use cwd::CwdPolicy;
pub use denylist::ProgramDenylist;
pub use env::EnvPolicy;
pub use profile::ProfileDefault;
pub use shell::ShellPolicy;
pub use tree_limits::TreeLimits;
