//! Spawn policy: the gate every spawn request passes before anything is
//! started. A [`SpawnPolicy`] sees the whole request and its context, and
//! either allows it (possibly rewriting it: adding env, forcing a cwd,
//! resolving the program) or denies it with a reason.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

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

/// Which kind of rule refused a spawn: what a caller can branch on without
/// reading the reason (a `concurrency` denial may succeed later; the others
/// will not until the request or the policy changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DenyRule {
    /// The program is not allowed, is denied, or cannot be resolved.
    Program,
    /// Shell command lines are not allowed.
    Shell,
    /// The working directory is outside the allowed roots or cannot be
    /// resolved.
    Cwd,
    /// Too many processes run now (in all, or of the owner).
    Concurrency,
    /// The requested sandbox profile does not exist, or the request names
    /// none where one is required.
    Profile,
    /// The request's owner was closed by a `close_owner` (a cancelled
    /// session) and not reopened since.
    OwnerClosed,
    /// The request asks for more than a ceiling allows: a longer timeout,
    /// a larger output cap or rlimit, a lower nice value, or a umask that
    /// clears required bits.
    Limit,
    /// A rule of a policy outside procward, or one this version does not
    /// know (sent by a newer peer).
    #[serde(other)]
    Other,
}

impl DenyRule {
    /// The rule's name as the protocols spell it (`"concurrency"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DenyRule::Program => "program",
            DenyRule::Shell => "shell",
            DenyRule::Cwd => "cwd",
            DenyRule::Concurrency => "concurrency",
            DenyRule::Profile => "profile",
            DenyRule::OwnerClosed => "owner_closed",
            DenyRule::Limit => "limit",
            DenyRule::Other => "other",
        }
    }
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
