//! [`ProgramAllowlist`]: only listed programs may run.

use std::path::PathBuf;

use super::resolve::{ListKind, check_list};
use super::{Denied, PolicyContext, SpawnPolicy};
use crate::messages::SpawnRequest;

/// Allows only the listed programs.
///
/// # Resolution
///
/// The request's program is first resolved to the absolute, canonical path
/// of the file that would run, the way `execvp` finds it:
///
/// - a program containing `/` is taken relative to the request's cwd (or
///   the registry's, when the request has none);
/// - a bare name is searched in the `PATH` the child will have: the last
///   `PATH` the request sets; none at all if it clears its environment
///   without setting one; else the registry's. Empty and relative `PATH`
///   entries are relative to the child's cwd. The first executable regular
///   file wins;
/// - the result is canonicalized: symlinks followed, `.` and `..` gone.
///
/// The entries are canonicalized the same way at each check, so `./x`,
/// `..`, a symlink or an earlier `PATH` directory cannot make an unlisted
/// file pass for a listed one, and a listed symlink (`/bin/sh` to `dash`)
/// matches its target. A program that cannot be resolved is denied with a
/// reason saying so.
///
/// # Rewrite
///
/// `argv[0]` becomes the canonical path, so that what runs is the file that
/// was checked, whatever the `PATH` or cwd. The program sees that path as
/// its `argv[0]`: a multi-call binary that dispatches on its name (busybox)
/// sees its own name, not the symlink it was called by.
///
/// A shell command runs `/bin/sh`: it passes only if `/bin/sh` is listed,
/// and is not rewritten.
///
/// Entries must be absolute paths to files; an entry that is relative or
/// does not exist matches nothing, and the empty list denies everything.
///
/// ```
/// use procward::policy::{PolicyChain, ProgramAllowlist};
///
/// let chain = PolicyChain::new().with(ProgramAllowlist::new(["/bin/echo", "/bin/cat"]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramAllowlist {
    programs: Vec<PathBuf>,
}

impl ProgramAllowlist {
    /// Allows the programs at these paths.
    pub fn new<I, P>(programs: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        ProgramAllowlist {
            programs: programs.into_iter().map(Into::into).collect(),
        }
    }

    /// The entries, as given.
    pub fn programs(&self) -> &[PathBuf] {
        &self.programs
    }
}

impl SpawnPolicy for ProgramAllowlist {
    fn check(&self, request: &mut SpawnRequest, _: &PolicyContext<'_>) -> Result<(), Denied> {
        check_list(ListKind::Allow, &self.programs, request)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::messages::Command;
    use crate::policy::scratch::Scratch;

    use crate::policy::scratch::CONTEXT;

    #[test]
    fn allows_listed_programs_and_pins_them() {
        let sh = fs::canonicalize("/bin/sh").unwrap();
        let policy = ProgramAllowlist::new(["/bin/sh"]);
        let mut req = SpawnRequest::argv(["sh", "-c", "true"]);
        policy.check(&mut req, &CONTEXT).unwrap();
        let Command::Argv(argv) = &req.command else {
            panic!("the command changed form: {req:?}");
        };
        assert_eq!(argv[0], sh.to_str().unwrap());
        assert_eq!(argv[1..], ["-c", "true"]);
    }

    #[test]
    fn shell_commands_are_checked_as_bin_sh() {
        let mut req = SpawnRequest::shell("true");
        ProgramAllowlist::new(["/bin/sh"])
            .check(&mut req, &CONTEXT)
            .unwrap();
        assert_eq!(req.command, Command::Shell("true".into()));
        let denied = ProgramAllowlist::new(["/bin/cat"])
            .check(&mut SpawnRequest::shell("true"), &CONTEXT)
            .unwrap_err();
        assert!(denied.reason.contains("\"/bin/sh\""), "{denied:?}");
        assert!(denied.reason.contains("not in the allowlist"), "{denied:?}");
    }

    #[test]
    fn a_same_named_program_elsewhere_is_not_the_listed_one() {
        let scratch = Scratch::new("allow-path");
        scratch.executable("bin/sh");
        let path = format!("{}:/usr/bin:/bin", scratch.path().join("bin").display());
        let mut req = SpawnRequest::argv(["sh"]).env("PATH", path);
        let denied = ProgramAllowlist::new(["/bin/sh"])
            .check(&mut req, &CONTEXT)
            .unwrap_err();
        assert!(
            denied
                .reason
                .contains(&scratch.path().join("bin/sh").display().to_string()),
            "{denied:?}"
        );
        assert_eq!(
            req.command,
            Command::Argv(vec!["sh".into()]),
            "a denied request is left alone"
        );
    }

    #[test]
    fn unresolvable_programs_and_empty_lists_deny() {
        let denied = ProgramAllowlist::new(["/bin/sh"])
            .check(&mut SpawnRequest::argv(["no-such-program-here"]), &CONTEXT)
            .unwrap_err();
        assert!(denied.reason.contains("cannot be resolved"), "{denied:?}");
        let none: [&str; 0] = [];
        let denied = ProgramAllowlist::new(none)
            .check(&mut SpawnRequest::argv(["sh"]), &CONTEXT)
            .unwrap_err();
        assert!(denied.reason.contains("not in the allowlist"), "{denied:?}");
    }
}
