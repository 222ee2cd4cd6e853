//! Where a request's program lives: the absolute, canonical path of the file
//! the OS would execute, found the way `execvp` finds it, so that the
//! program lists check what actually runs.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{Denied, DenyRule};
use crate::messages::{Command, SpawnRequest};

/// The program of `request` (`/bin/sh` for a shell command) as an absolute,
/// canonical path: symlinks followed, no `.` or `..` left.
///
/// A program containing `/` is taken relative to the request's cwd (or
/// ours); a bare name is searched in the `PATH` the child will have: the
/// last `PATH` the request sets, else none when it clears its environment,
/// else ours. Empty and relative `PATH` entries are taken relative to the
/// child's cwd, as `execvp` would. The first entry holding an executable
/// regular file wins.
pub(super) fn resolve_program(request: &SpawnRequest) -> Result<PathBuf, Denied> {
    let program = request.command.program();
    let cannot = |why: String| {
        Denied::because(
            DenyRule::Program,
            format!("program {program:?} cannot be resolved: {why}"),
        )
    };
    let found = if program.contains('/') {
        let path = base_dir(request).map_err(&cannot)?.join(program);
        if !is_executable_file(&path) {
            return Err(cannot(format!(
                "{} is not an executable file",
                path.display()
            )));
        }
        path
    } else {
        let search = request
            .child_path()
            .ok_or_else(|| cannot("the child has no PATH to search".to_owned()))?;
        let base = base_dir(request).map_err(&cannot)?;
        std::env::split_paths(&search)
            .map(|dir| {
                // An empty entry means the current directory (POSIX).
                let dir = if dir.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    dir
                };
                base.join(dir).join(program)
            })
            .find(|candidate| is_executable_file(candidate))
            .ok_or_else(|| cannot("no executable of that name in the PATH".to_owned()))?
    };
    let canonical =
        fs::canonicalize(&found).map_err(|err| cannot(format!("{}: {err}", found.display())))?;
    if canonical.to_str().is_none() {
        return Err(cannot(format!(
            "it resolves to {}, which is not UTF-8",
            canonical.display()
        )));
    }
    Ok(canonical)
}

/// Rewrites `argv[0]` to `resolved`, so that what runs is what was
/// checked. A shell command always runs `/bin/sh`: nothing to rewrite.
fn pin_program(request: &mut SpawnRequest, resolved: &Path) {
    if let (Command::Argv(argv), Some(resolved)) = (&mut request.command, resolved.to_str()) {
        if let Some(program) = argv.first_mut() {
            *program = resolved.to_owned();
        }
    }
}

/// What a program list does with the programs it lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ListKind {
    /// Only listed programs run.
    Allow,
    /// Listed programs do not run.
    Deny,
}

/// The check of a program allowlist or denylist: resolves the program,
/// refuses it by `kind`, and pins `argv[0]` to what was checked.
pub(super) fn check_list(
    kind: ListKind,
    entries: &[PathBuf],
    request: &mut SpawnRequest,
) -> Result<(), Denied> {
    let resolved = resolve_program(request)?;
    let is_listed = listed(&resolved, entries);
    let refused = match kind {
        ListKind::Allow => (!is_listed).then_some("is not in the allowlist"),
        ListKind::Deny => is_listed.then_some("is in the denylist"),
    };
    if let Some(why) = refused {
        return Err(Denied::because(
            DenyRule::Program,
            format!(
                "program {:?} resolves to {}, which {why}",
                request.command.program(),
                resolved.display()
            ),
        ));
    }
    pin_program(request, &resolved);
    Ok(())
}

/// Whether `resolved` is one of `entries` once they are canonicalized.
/// Entries that are not absolute or do not exist never match.
fn listed(resolved: &Path, entries: &[PathBuf]) -> bool {
    entries
        .iter()
        .filter(|entry| entry.is_absolute())
        .filter_map(|entry| fs::canonicalize(entry).ok())
        .any(|entry| entry == resolved)
}

/// The directory the child starts in, as an absolute path: the request's
/// cwd (relative to ours if it is relative), else ours.
pub(super) fn base_dir(request: &SpawnRequest) -> Result<PathBuf, String> {
    match &request.cwd {
        Some(dir) if dir.is_absolute() => Ok(dir.clone()),
        cwd => {
            let ours = std::env::current_dir()
                .map_err(|err| format!("the registry's working directory is unknown: {err}"))?;
            Ok(match cwd {
                Some(dir) => ours.join(dir),
                None => ours,
            })
        }
    }
}

/// A regular file (after following symlinks) with an execute bit set.
fn is_executable_file(path: &Path) -> bool {
    // `execvp` would try a path with a NUL-free name only; ours come from
    // strings validated to have none, so this only guards odd PATH values.
    if path.as_os_str().as_bytes().contains(&0) {
        return false;
    }
    fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::policy::scratch::Scratch;

    #[test]
    fn bare_names_resolve_in_our_path() {
        let resolved = resolve_program(&SpawnRequest::argv(["sh"])).unwrap();
        assert!(resolved.is_absolute());
        assert_eq!(resolved, fs::canonicalize("/bin/sh").unwrap());
    }

    #[test]
    fn the_requests_own_path_wins_and_its_first_match() {
        let scratch = Scratch::new("resolve-path");
        let early = scratch.dir("early");
        let late = scratch.dir("late");
        let first = scratch.executable("early/tool");
        scratch.executable("late/tool");
        let path = format!("{}:{}", early.display(), late.display());
        let req = SpawnRequest::argv(["tool"])
            .env("PATH", "/nowhere")
            .env("PATH", path);
        assert_eq!(resolve_program(&req).unwrap(), first);
    }

    #[test]
    fn cleared_env_without_path_has_no_path() {
        let req = SpawnRequest::argv(["sh"]).clear_env();
        let denied = resolve_program(&req).unwrap_err();
        assert!(denied.reason.contains("cannot be resolved"), "{denied:?}");
        assert!(denied.reason.contains("no PATH"), "{denied:?}");
    }

    #[test]
    fn skips_non_executables_and_directories() {
        let scratch = Scratch::new("resolve-skip");
        scratch.dir("a");
        scratch.dir("b");
        scratch.dir("a/tool");
        scratch.file("b/tool");
        let exe = scratch.executable("c/tool");
        let path = ["a", "b", "c"].map(|d| scratch.path().join(d).display().to_string());
        let req = SpawnRequest::argv(["tool"]).env("PATH", path.join(":"));
        assert_eq!(resolve_program(&req).unwrap(), exe);
        let req = SpawnRequest::argv(["tool"]).env("PATH", path[..2].join(":"));
        let denied = resolve_program(&req).unwrap_err();
        assert!(denied.reason.contains("no executable"), "{denied:?}");
    }

    #[test]
    fn slashes_resolve_against_the_requests_cwd_and_follow_symlinks() {
        let scratch = Scratch::new("resolve-cwd");
        let target = scratch.executable("real/tool");
        scratch.dir("work");
        symlink(&target, scratch.path().join("work/alias")).unwrap();
        let req = SpawnRequest::argv(["./alias"]).cwd(scratch.path().join("work"));
        assert_eq!(resolve_program(&req).unwrap(), target);
        let req = SpawnRequest::argv(["../real/./tool"]).cwd(scratch.path().join("work"));
        assert_eq!(resolve_program(&req).unwrap(), target);
    }

    #[test]
    fn relative_and_empty_path_entries_are_the_childs_cwd() {
        let scratch = Scratch::new("resolve-rel");
        let exe = scratch.executable("bin/tool");
        let req = SpawnRequest::argv(["tool"])
            .cwd(scratch.path())
            .env("PATH", "bin");
        assert_eq!(resolve_program(&req).unwrap(), exe);
        let req = SpawnRequest::argv(["tool"])
            .cwd(scratch.path().join("bin"))
            .env("PATH", "/nowhere::/nothing");
        assert_eq!(resolve_program(&req).unwrap(), exe);
    }

    #[test]
    fn missing_programs_are_named() {
        let denied = resolve_program(&SpawnRequest::argv(["/no/such/program"])).unwrap_err();
        assert!(denied.reason.contains("\"/no/such/program\""), "{denied:?}");
        assert!(
            denied.reason.contains("not an executable file"),
            "{denied:?}"
        );
    }

    #[test]
    fn shells_resolve_to_bin_sh() {
        let resolved = resolve_program(&SpawnRequest::shell("true").clear_env()).unwrap();
        assert_eq!(resolved, fs::canonicalize("/bin/sh").unwrap());
    }

    #[test]
    fn pinning_rewrites_argv0_only() {
        let mut req = SpawnRequest::argv(["sh", "-c", "true"]);
        pin_program(&mut req, Path::new("/usr/bin/dash"));
        assert_eq!(
            req.command,
            Command::Argv(vec!["/usr/bin/dash".into(), "-c".into(), "true".into()])
        );
        let mut shell = SpawnRequest::shell("true");
        pin_program(&mut shell, Path::new("/usr/bin/dash"));
        assert_eq!(shell.command, Command::Shell("true".into()));
    }

    #[test]
    fn list_entries_are_canonicalized_and_must_exist() {
        let scratch = Scratch::new("resolve-list");
        let target = scratch.executable("real/tool");
        symlink(&target, scratch.path().join("link")).unwrap();
        let via_link = vec![scratch.path().join("link")];
        assert!(listed(&target, &via_link));
        let dotted = vec![scratch.path().join("real/../real/tool")];
        assert!(listed(&target, &dotted));
        assert!(!listed(&target, &[scratch.path().join("gone")]));
        assert!(!listed(&target, &[PathBuf::from("tool")]));
    }
}
