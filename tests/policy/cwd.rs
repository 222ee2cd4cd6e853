//! Working-directory confinement in a real registry: a cwd must resolve
//! under a root, `..` and symlinks cannot lead out, a missing cwd is
//! denied, and a request without one starts in the first root. Checked with
//! `pwd -P`.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use procward::policy::{CwdPolicy, DenyRule, PolicyChain};
use procward::{Error, Registry, RegistryConfig, Snapshot, SpawnRequest};

use crate::support::TempDir;

fn denial(result: procward::Result<Snapshot>) -> String {
    match result {
        Err(Error::PolicyDenied { rule, reason }) => {
            assert_eq!(rule, DenyRule::Cwd, "{reason}");
            reason
        }
        other => panic!("expected a policy denial, got {other:?}"),
    }
}

/// The physical directory a child started in.
async fn pwd(registry: &Registry, request: SpawnRequest) -> PathBuf {
    let spawned = registry.spawn(request).await.expect("spawn");
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .expect("wait")
        .snapshot;
    assert_eq!(done.exit_code, Some(0), "{done:?}");
    PathBuf::from(done.stdout.text().trim_end_matches('\n'))
}

fn pwd_in(dir: &Path) -> SpawnRequest {
    SpawnRequest::argv(["pwd", "-P"]).cwd(dir)
}

/// `scratch/root` (with `a/b` inside), `scratch/outside`, and the symlinks
/// `root/door` to outside and `scratch/entry` to root.
struct Tree {
    scratch: TempDir,
}

impl Tree {
    fn new(tag: &str) -> Self {
        let scratch = TempDir::new(tag);
        fs::create_dir_all(scratch.path().join("root/a/b")).expect("create a directory");
        fs::create_dir(scratch.path().join("outside")).expect("create a directory");
        symlink(
            scratch.path().join("outside"),
            scratch.path().join("root/door"),
        )
        .expect("create a symlink");
        symlink(scratch.path().join("root"), scratch.path().join("entry"))
            .expect("create a symlink");
        Tree { scratch }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.scratch.path().join(rel)
    }

    fn canonical(&self, rel: &str) -> PathBuf {
        fs::canonicalize(self.path(rel)).expect("canonicalize")
    }
}

async fn confined_to(roots: &[PathBuf]) -> Registry {
    let policy = PolicyChain::new().with(CwdPolicy::new(roots.iter().cloned()));
    Registry::start(RegistryConfig::default().policy(policy))
        .await
        .expect("start the registry")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cwd_under_a_root_runs_there() {
    let tree = Tree::new("cwd-inside");
    let registry = confined_to(&[tree.path("entry")]).await;

    assert_eq!(
        pwd(&registry, pwd_in(&tree.path("root/a/b"))).await,
        tree.canonical("root/a/b")
    );
    assert_eq!(
        pwd(&registry, pwd_in(&tree.path("entry/a/../a"))).await,
        tree.canonical("root/a")
    );
    assert_eq!(
        pwd(&registry, pwd_in(&tree.path("root"))).await,
        tree.canonical("root")
    );

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cwd_starts_in_the_first_root() {
    let tree = Tree::new("cwd-default");
    let registry = confined_to(&[tree.path("entry/a"), tree.path("outside")]).await;

    let dir = pwd(&registry, SpawnRequest::argv(["pwd", "-P"])).await;
    assert_eq!(dir, tree.canonical("root/a"));
    // A shell finds itself there too.
    let dir = pwd(&registry, SpawnRequest::shell("pwd -P")).await;
    assert_eq!(dir, tree.canonical("root/a"));

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotdot_and_symlink_escapes_are_denied_and_start_nothing() {
    let tree = Tree::new("cwd-escape");
    let registry = confined_to(&[tree.path("root")]).await;
    let witness = tree.path("outside/witness");

    for escape in ["root/..", "root/a/../../outside", "root/door", "entry/door"] {
        let request = SpawnRequest::shell("echo ran > witness").cwd(tree.path(escape));
        let reason = denial(registry.spawn(request).await);
        assert!(
            reason.contains("outside the allowed roots"),
            "{escape}: {reason}"
        );
        assert!(
            reason.contains(&tree.path(escape).display().to_string()),
            "{reason}"
        );
    }
    // The prefix of a root's name is not the root.
    fs::create_dir(tree.path("rootless")).unwrap();
    let reason = denial(registry.spawn(pwd_in(&tree.path("rootless"))).await);
    assert!(reason.contains("outside the allowed roots"), "{reason}");

    assert!(
        registry.list().await.unwrap().is_empty(),
        "nothing was started"
    );
    assert!(!witness.exists());

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_cwd_is_denied() {
    let tree = Tree::new("cwd-missing");
    let registry = confined_to(&[tree.path("root")]).await;

    let reason = denial(registry.spawn(pwd_in(&tree.path("root/gone"))).await);
    assert!(reason.contains("root/gone"), "{reason}");
    assert!(reason.contains("cannot be resolved"), "{reason}");
    // A dangling symlink inside the root is missing too.
    symlink(tree.path("nowhere"), tree.path("root/dangling")).unwrap();
    let reason = denial(registry.spawn(pwd_in(&tree.path("root/dangling"))).await);
    assert!(reason.contains("cannot be resolved"), "{reason}");
    assert!(registry.list().await.unwrap().is_empty());

    registry.shutdown().await.unwrap();
}
