//! [`ProgramDenylist`]: listed programs may not run.

use std::path::PathBuf;

use super::resolve::{ListKind, check_list};
use super::{Denied, PolicyContext, SpawnPolicy};
use crate::messages::SpawnRequest;

/// Denies the listed programs; allows every other program that resolves.
///
/// Resolution, canonicalization and the rewrite of `argv[0]` work as for
/// [`ProgramAllowlist`](super::ProgramAllowlist#resolution): a symlink to a listed
/// program, or the program reached through `..` or another `PATH`, is
/// still denied, and a program that cannot be resolved is denied too (we
/// cannot tell that it is not a listed one). A shell command is checked
/// as `/bin/sh`.
///
/// A denylist only stops the files it names: a copy of a listed program at
/// another path, or another program that does the same job, is not
/// stopped. Prefer an allowlist where the set of programs is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramDenylist {
    programs: Vec<PathBuf>,
}

impl ProgramDenylist {
    /// Denies the programs at these paths.
    pub fn new<I, P>(programs: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        ProgramDenylist {
            programs: programs.into_iter().map(Into::into).collect(),
        }
    }

    /// The entries, as given.
    pub fn programs(&self) -> &[PathBuf] {
        &self.programs
    }
}

impl SpawnPolicy for ProgramDenylist {
    fn check(&self, request: &mut SpawnRequest, _: &PolicyContext<'_>) -> Result<(), Denied> {
        check_list(ListKind::Deny, &self.programs, request)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::messages::Command;
    use crate::policy::scratch::Scratch;

    use crate::policy::scratch::CONTEXT;

    #[test]
    fn a_symlink_to_a_denied_program_is_denied() {
        let scratch = Scratch::new("deny-link");
        let tool = scratch.executable("real/tool");
        symlink(&tool, scratch.path().join("innocent")).unwrap();
        let policy = ProgramDenylist::new([tool.clone()]);
        let mut req = SpawnRequest::argv(["./innocent"]).cwd(scratch.path());
        let denied = policy.check(&mut req, &CONTEXT).unwrap_err();
        assert!(denied.reason.contains("\"./innocent\""), "{denied:?}");
        assert!(denied.reason.contains("in the denylist"), "{denied:?}");
    }

    #[test]
    fn other_programs_pass_pinned() {
        let scratch = Scratch::new("deny-other");
        let tool = scratch.executable("tool");
        let other = scratch.executable("other");
        let mut req = SpawnRequest::argv(["./other", "x"]).cwd(scratch.path());
        ProgramDenylist::new([tool])
            .check(&mut req, &CONTEXT)
            .unwrap();
        let pinned = other.to_str().unwrap().to_owned();
        assert_eq!(req.command, Command::Argv(vec![pinned, "x".into()]));
    }

    #[test]
    fn the_shell_is_bin_sh() {
        let denied = ProgramDenylist::new(["/bin/sh"])
            .check(&mut SpawnRequest::shell("true"), &CONTEXT)
            .unwrap_err();
        assert!(denied.reason.contains("in the denylist"), "{denied:?}");
    }

    #[test]
    fn unresolvable_programs_are_denied() {
        let denied = ProgramDenylist::new(["/bin/sh"])
            .check(
                &mut SpawnRequest::argv(["./nothing-here"]).cwd("/"),
                &CONTEXT,
            )
            .unwrap_err();
        assert!(denied.reason.contains("cannot be resolved"), "{denied:?}");
    }
}
