//! Scratch directories, and an empty context, for the unit tests of the
//! policies.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::policy::PolicyContext;

/// The context of a registry with nothing running and no owner.
pub(super) const CONTEXT: PolicyContext<'static> = PolicyContext {
    owner: None,
    running_total: 0,
    running_of_owner: 0,
};

/// A directory under the temp dir, canonical, removed on drop.
pub(super) struct Scratch {
    path: PathBuf,
}

impl Scratch {
    pub(super) fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("procward-unit-{}-{n}-{tag}", std::process::id()));
        fs::create_dir(&path).unwrap();
        Scratch {
            path: fs::canonicalize(path).unwrap(),
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the directory `rel` (and its parents).
    pub(super) fn dir(&self, rel: &str) -> PathBuf {
        let dir = self.path.join(rel);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Creates the non-executable file `rel`.
    pub(super) fn file(&self, rel: &str) -> PathBuf {
        let file = self.path.join(rel);
        if let Some(parent) = file.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&file, "#!/bin/sh\n").unwrap();
        file
    }

    /// Creates the executable file `rel`.
    pub(super) fn executable(&self, rel: &str) -> PathBuf {
        let file = self.file(rel);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).unwrap();
        file
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
