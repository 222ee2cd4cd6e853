//! Program allowlists and denylists in a real registry: a program is
//! checked as the canonical file that would run, so neither a directory
//! earlier in `PATH`, `./x`, `..` nor a symlink slips past, and `argv[0]` is
//! rewritten to the file that was checked.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use procward::policy::{DenyRule, PolicyChain, ProgramAllowlist, ProgramDenylist};
use procward::{Error, Registry, RegistryConfig, Snapshot, SpawnRequest, Status};

use crate::support::{TempDir, unique_path};

/// The reason of a policy denial; panics on anything else.
fn denial(result: procward::Result<Snapshot>) -> String {
    match result {
        Err(Error::PolicyDenied { rule, reason }) => {
            assert_eq!(rule, DenyRule::Program, "{reason}");
            reason
        }
        other => panic!("expected a policy denial, got {other:?}"),
    }
}

/// Writes an executable script at `path` that writes `ran` to the file
/// named by `$WITNESS`.
fn witness_script(path: &Path) -> PathBuf {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("create the script's directory");
    }
    fs::write(path, "#!/bin/sh\necho ran > \"$WITNESS\"\n").expect("write the script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .expect("make the script executable");
    fs::canonicalize(path).expect("canonicalize the script")
}

/// Runs `request` to its end and returns the terminal snapshot.
async fn run(registry: &Registry, request: SpawnRequest) -> Snapshot {
    let spawned = registry.spawn(request).await.expect("spawn");
    registry
        .wait(spawned.handle_id, None)
        .await
        .expect("wait")
        .snapshot
}

/// A registry with no policy of its own and the profile `strict`.
async fn with_strict(profile: PolicyChain) -> Registry {
    Registry::start(RegistryConfig::default().profile("strict", profile))
        .await
        .expect("start the registry")
}

fn canonical(path: &str) -> String {
    fs::canonicalize(path)
        .expect("canonicalize")
        .to_str()
        .expect("a UTF-8 path")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_program_runs_with_argv0_pinned_to_its_canonical_path() {
    let registry = Registry::start(
        RegistryConfig::default()
            .policy(PolicyChain::new().with(ProgramAllowlist::new(["/bin/cat"]))),
    )
    .await
    .unwrap();

    let done = run(&registry, SpawnRequest::argv(["cat", "/proc/self/cmdline"])).await;
    assert_eq!(done.status, Status::Exited);
    let expected = format!("{}\0/proc/self/cmdline\0", canonical("/bin/cat"));
    assert_eq!(done.stdout.text(), expected);
    assert_eq!(
        done.command.as_ref(),
        format!("{} /proc/self/cmdline", canonical("/bin/cat")),
        "the snapshot shows what ran"
    );

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_named_program_earlier_in_path_is_denied() {
    let scratch = TempDir::new("path-trick");
    let fake = witness_script(&scratch.path().join("bin/cat"));
    let witness = unique_path("path-trick-witness");
    let path = format!("{}:/usr/bin:/bin", scratch.path().join("bin").display());
    let request = SpawnRequest::argv(["cat", "/dev/null"])
        .env("PATH", path)
        .env("WITNESS", witness.to_string_lossy());
    let registry = with_strict(PolicyChain::new().with(ProgramAllowlist::new(["/bin/cat"]))).await;

    let reason = denial(
        registry
            .spawn(request.clone().sandbox_profile("strict"))
            .await,
    );
    assert!(reason.contains("\"cat\""), "{reason}");
    assert!(reason.contains(&fake.display().to_string()), "{reason}");
    assert!(reason.contains("not in the allowlist"), "{reason}");
    assert!(
        registry.list().await.unwrap().is_empty(),
        "nothing was started"
    );
    assert!(!witness.exists());

    // Without the profile the trick works: the fake `cat` runs.
    let done = run(&registry, request).await;
    assert_eq!(done.exit_code, Some(0));
    assert_eq!(fs::read_to_string(&witness).unwrap(), "ran\n");

    registry.shutdown().await.unwrap();
    let _ = fs::remove_file(&witness);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_program_resolves_in_the_requests_cwd() {
    let scratch = TempDir::new("dot-slash");
    let script = witness_script(&scratch.path().join("x"));
    let witness = unique_path("dot-slash-witness");
    let request = SpawnRequest::argv(["./x"])
        .cwd(scratch.path())
        .env("WITNESS", witness.to_string_lossy());
    let registry =
        with_strict(PolicyChain::new().with(ProgramAllowlist::new(["/bin/sh", "/bin/cat"]))).await;

    let reason = denial(
        registry
            .spawn(request.clone().sandbox_profile("strict"))
            .await,
    );
    assert!(reason.contains("\"./x\""), "{reason}");
    assert!(reason.contains(&script.display().to_string()), "{reason}");
    assert!(registry.list().await.unwrap().is_empty());
    assert!(!witness.exists());

    // Allowed by its real path, `./x` runs, pinned to that path.
    let allowed =
        with_strict(PolicyChain::new().with(ProgramAllowlist::new([script.clone()]))).await;
    let done = run(&allowed, request.sandbox_profile("strict")).await;
    assert_eq!(done.exit_code, Some(0));
    assert_eq!(done.command.as_ref(), script.to_str().unwrap());
    assert!(witness.exists());

    allowed.shutdown().await.unwrap();
    registry.shutdown().await.unwrap();
    let _ = fs::remove_file(&witness);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotdot_and_symlinks_reach_the_same_file() {
    let scratch = TempDir::new("program-links");
    let tool = witness_script(&scratch.path().join("real/tool"));
    fs::create_dir(scratch.path().join("work")).unwrap();
    symlink(&tool, scratch.path().join("work/harmless")).unwrap();
    let witness = unique_path("program-links-witness");
    let registry = with_strict(PolicyChain::new().with(ProgramDenylist::new([tool.clone()]))).await;

    for program in ["./harmless", "../real/tool", "../work/../real/./tool"] {
        let request = SpawnRequest::argv([program])
            .cwd(scratch.path().join("work"))
            .env("WITNESS", witness.to_string_lossy())
            .sandbox_profile("strict");
        let reason = denial(registry.spawn(request).await);
        assert!(reason.contains(&format!("{program:?}")), "{reason}");
        assert!(reason.contains("in the denylist"), "{reason}");
    }
    // A bare name found through PATH is the same file too.
    let request = SpawnRequest::argv(["harmless"])
        .env("PATH", scratch.path().join("work").to_string_lossy())
        .env("WITNESS", witness.to_string_lossy())
        .sandbox_profile("strict");
    assert!(denial(registry.spawn(request).await).contains("in the denylist"));
    assert!(registry.list().await.unwrap().is_empty());
    assert!(!witness.exists());

    // Other programs still run under the denylist.
    let done = run(
        &registry,
        SpawnRequest::argv(["echo", "fine"]).sandbox_profile("strict"),
    )
    .await;
    assert_eq!(done.stdout.text(), "fine\n");

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresolvable_programs_are_denied_saying_so() {
    let registry = with_strict(PolicyChain::new().with(ProgramDenylist::new(["/bin/rm"]))).await;

    let reason = denial(
        registry
            .spawn(SpawnRequest::argv(["procward-no-such-program"]).sandbox_profile("strict"))
            .await,
    );
    assert!(
        reason.contains("\"procward-no-such-program\" cannot be resolved"),
        "{reason}"
    );

    // A cleared environment without PATH has no PATH to search.
    let reason = denial(
        registry
            .spawn(
                SpawnRequest::argv(["cat"])
                    .clear_env()
                    .sandbox_profile("strict"),
            )
            .await,
    );
    assert!(reason.contains("no PATH"), "{reason}");
    let done = run(
        &registry,
        SpawnRequest::argv(["cat", "/dev/null"])
            .clear_env()
            .env("PATH", "/usr/bin:/bin")
            .sandbox_profile("strict"),
    )
    .await;
    assert_eq!(done.exit_code, Some(0));

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_commands_are_checked_as_bin_sh() {
    let witness = unique_path("shell-list-witness");
    let line = format!("echo ran > '{}'", witness.display());
    let registry = Registry::start(
        RegistryConfig::default()
            .profile(
                "no-sh",
                PolicyChain::new().with(ProgramAllowlist::new(["/bin/cat"])),
            )
            .profile(
                "sh",
                PolicyChain::new().with(ProgramAllowlist::new(["/bin/sh"])),
            )
            .profile(
                "deny-sh",
                PolicyChain::new().with(ProgramDenylist::new(["/bin/sh"])),
            ),
    )
    .await
    .unwrap();

    for profile in ["no-sh", "deny-sh"] {
        let reason = denial(
            registry
                .spawn(SpawnRequest::shell(&line).sandbox_profile(profile))
                .await,
        );
        assert!(reason.contains("\"/bin/sh\""), "{profile}: {reason}");
    }
    assert!(registry.list().await.unwrap().is_empty());
    assert!(!witness.exists());

    let done = run(&registry, SpawnRequest::shell(&line).sandbox_profile("sh")).await;
    assert_eq!(done.exit_code, Some(0));
    assert!(witness.exists());

    registry.shutdown().await.unwrap();
    let _ = fs::remove_file(&witness);
}
