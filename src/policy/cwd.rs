//! [`CwdPolicy`]: the working directory must lie under one of some roots.

use std::fs;
use std::path::{Path, PathBuf};

use super::resolve::base_dir;
use super::{Denied, DenyRule, PolicyContext, SpawnPolicy};
use crate::messages::SpawnRequest;

/// Confines the child's working directory under the given roots.
///
/// The request's cwd (taken relative to ours if it is relative) and the
/// roots are canonicalized at each check, and the cwd must be a directory
/// equal to or below one of the roots, component by component (`/srv/ab`
/// is not under `/srv/a`). So neither `..` nor a symlink can lead out. A
/// cwd that does not exist is denied.
///
/// Rewrites: the cwd becomes its canonical path (so a symlink swapped
/// after the check cannot redirect the child), and a request without a
/// cwd gets the *first* root (it would otherwise start in ours, which
/// need not be under any root).
///
/// Roots must be absolute paths to directories; a root that is relative or
/// is not an existing directory admits nothing, and with no usable root every request is denied.
///
/// ```
/// use procward::policy::{CwdPolicy, PolicyChain};
///
/// let chain = PolicyChain::new().with(CwdPolicy::new(["/srv/scripts", "/tmp"]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CwdPolicy {
    roots: Vec<PathBuf>,
}

impl CwdPolicy {
    /// Confines cwds under these roots; the first one is the default.
    pub fn new<I, P>(roots: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        CwdPolicy {
            roots: roots.into_iter().map(Into::into).collect(),
        }
    }

    /// The roots, as given.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    fn roots_text(&self) -> String {
        let roots: Vec<String> = self
            .roots
            .iter()
            .map(|root| root.display().to_string())
            .collect();
        format!("[{}]", roots.join(", "))
    }
}

impl SpawnPolicy for CwdPolicy {
    fn check(&self, request: &mut SpawnRequest, _: &PolicyContext<'_>) -> Result<(), Denied> {
        let Some(asked) = request.cwd.clone() else {
            let Some(first) = self.roots.first() else {
                return Err(Denied::because(
                    DenyRule::Cwd,
                    "no cwd roots are configured: every cwd is denied",
                ));
            };
            let root = usable_root(first).ok_or_else(|| {
                Denied::because(DenyRule::Cwd, format!(
                    "no cwd was given and the default root {} is not an existing absolute directory",
                    first.display()
                ))
            })?;
            request.cwd = Some(root);
            return Ok(());
        };
        let absolute = base_dir(request).map_err(|why| {
            Denied::because(
                DenyRule::Cwd,
                format!("cwd {} cannot be resolved: {why}", asked.display()),
            )
        })?;
        let canonical = fs::canonicalize(&absolute).map_err(|err| {
            Denied::because(
                DenyRule::Cwd,
                format!("cwd {} cannot be resolved: {err}", asked.display()),
            )
        })?;
        if !canonical.is_dir() {
            return Err(Denied::because(
                DenyRule::Cwd,
                format!("cwd {} is not a directory", asked.display()),
            ));
        }
        let inside = self
            .roots
            .iter()
            .filter_map(|root| usable_root(root))
            .any(|root| canonical.starts_with(root));
        if !inside {
            return Err(Denied::because(
                DenyRule::Cwd,
                format!(
                    "cwd {} resolves to {}, which is outside the allowed roots {}",
                    asked.display(),
                    canonical.display(),
                    self.roots_text()
                ),
            ));
        }
        request.cwd = Some(canonical);
        Ok(())
    }
}

/// The canonical form of a root that is an absolute path to a directory.
fn usable_root(root: &Path) -> Option<PathBuf> {
    if !root.is_absolute() {
        return None;
    }
    fs::canonicalize(root).ok().filter(|root| root.is_dir())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::policy::scratch::Scratch;

    use crate::policy::scratch::CONTEXT;

    fn denied(policy: &CwdPolicy, cwd: &Path) -> String {
        let mut req = SpawnRequest::argv(["true"]).cwd(cwd);
        policy.check(&mut req, &CONTEXT).unwrap_err().reason
    }

    #[test]
    fn a_cwd_under_a_root_passes_canonical() {
        let scratch = Scratch::new("cwd-under");
        let root = scratch.dir("root");
        let deep = scratch.dir("root/a/b");
        let policy = CwdPolicy::new([root.clone()]);
        let mut req = SpawnRequest::argv(["true"]).cwd(root.join("a/./b/../b"));
        policy.check(&mut req, &CONTEXT).unwrap();
        assert_eq!(req.cwd, Some(deep));
        let mut req = SpawnRequest::argv(["true"]).cwd(&root);
        policy.check(&mut req, &CONTEXT).unwrap();
        assert_eq!(req.cwd, Some(root));
    }

    #[test]
    fn dotdot_and_symlink_escapes_are_denied() {
        let scratch = Scratch::new("cwd-escape");
        let root = scratch.dir("root");
        scratch.dir("outside");
        symlink(scratch.path().join("outside"), root.join("door")).unwrap();
        let policy = CwdPolicy::new([root.clone()]);
        let reason = denied(&policy, &root.join("../outside"));
        assert!(reason.contains("outside the allowed roots"), "{reason}");
        let reason = denied(&policy, &root.join("door"));
        assert!(reason.contains("outside the allowed roots"), "{reason}");
        assert!(
            reason.contains(&scratch.path().join("outside").display().to_string()),
            "{reason}"
        );
    }

    #[test]
    fn a_sibling_sharing_a_prefix_is_not_under_the_root() {
        let scratch = Scratch::new("cwd-prefix");
        let root = scratch.dir("a");
        let sibling = scratch.dir("ab");
        let reason = denied(&CwdPolicy::new([root]), &sibling);
        assert!(reason.contains("outside the allowed roots"), "{reason}");
    }

    #[test]
    fn missing_cwds_and_files_are_denied() {
        let scratch = Scratch::new("cwd-missing");
        let policy = CwdPolicy::new([scratch.path()]);
        let reason = denied(&policy, &scratch.path().join("gone"));
        assert!(reason.contains("cannot be resolved"), "{reason}");
        let file = scratch.file("plain");
        let reason = denied(&policy, &file);
        assert!(reason.contains("not a directory"), "{reason}");
    }

    #[test]
    fn no_cwd_gets_the_first_root() {
        let scratch = Scratch::new("cwd-default");
        let first = scratch.dir("first");
        let second = scratch.dir("second");
        symlink(&first, scratch.path().join("link")).unwrap();
        let policy = CwdPolicy::new([scratch.path().join("link"), second]);
        let mut req = SpawnRequest::argv(["true"]);
        policy.check(&mut req, &CONTEXT).unwrap();
        assert_eq!(req.cwd, Some(first));
    }

    #[test]
    fn unusable_roots_confine_nothing() {
        let scratch = Scratch::new("cwd-unusable");
        let none: [&str; 0] = [];
        let reason = denied(&CwdPolicy::new(none), scratch.path());
        assert!(reason.contains("outside the allowed roots"), "{reason}");
        let mut req = SpawnRequest::argv(["true"]);
        let reason = CwdPolicy::new(none)
            .check(&mut req, &CONTEXT)
            .unwrap_err()
            .reason;
        assert!(reason.contains("no cwd roots"), "{reason}");
        let missing = CwdPolicy::new([scratch.path().join("gone"), PathBuf::from("rel")]);
        let reason = denied(&missing, scratch.path());
        assert!(reason.contains("outside the allowed roots"), "{reason}");
        let reason = missing.check(&mut req, &CONTEXT).unwrap_err().reason;
        assert!(
            reason.contains("not an existing absolute directory"),
            "{reason}"
        );
    }
}
