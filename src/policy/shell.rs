//! [`ShellPolicy`]: whether the shell form of a command may run.

use super::{Denied, DenyRule, PolicyContext, SpawnPolicy};
use crate::messages::{Command, SpawnRequest};

/// Allows or denies [`Command::Shell`] requests; argv requests always pass.
///
/// This refuses the shell *form* only: an argv such as `["sh", "-c", ..]`
/// still runs a shell. To keep shells out altogether, also leave them out
/// of a [`ProgramAllowlist`](super::ProgramAllowlist) (or put them in a
/// [`ProgramDenylist`](super::ProgramDenylist), knowing that a denylist
/// misses shells it does not name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShellPolicy {
    allowed: bool,
}

impl ShellPolicy {
    /// Allows shell commands when `allowed`, denies them otherwise.
    pub fn new(allowed: bool) -> Self {
        ShellPolicy { allowed }
    }

    /// Denies shell commands.
    pub fn deny() -> Self {
        ShellPolicy::new(false)
    }

    /// Whether shell commands are allowed.
    pub fn allowed(&self) -> bool {
        self.allowed
    }
}

impl SpawnPolicy for ShellPolicy {
    fn check(&self, request: &mut SpawnRequest, _: &PolicyContext<'_>) -> Result<(), Denied> {
        match request.command {
            Command::Shell(_) if !self.allowed => Err(Denied::because(
                DenyRule::Shell,
                "shell commands are not allowed: pass the program and its arguments as an argv",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::policy::scratch::CONTEXT;

    #[test]
    fn denies_only_the_shell_form() {
        let deny = ShellPolicy::deny();
        let denied = deny
            .check(&mut SpawnRequest::shell("true"), &CONTEXT)
            .unwrap_err();
        assert!(denied.reason.contains("shell commands are not allowed"));
        deny.check(&mut SpawnRequest::argv(["sh", "-c", "true"]), &CONTEXT)
            .unwrap();
        ShellPolicy::new(true)
            .check(&mut SpawnRequest::shell("true"), &CONTEXT)
            .unwrap();
    }
}
