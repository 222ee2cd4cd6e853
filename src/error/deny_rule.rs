//! [`DenyRule`]: which kind of policy rule refused a spawn. Plain data at
//! the bottom of the crate, so the error type can carry it without
//! importing the policies that produce it.

use serde::{Deserialize, Serialize};

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
