//! The shell policy in a real registry: the shell form is denied and starts
//! nothing; argv requests still run.

use std::fs;

use procward::policy::{DenyRule, PolicyChain, ShellPolicy};
use procward::{Error, Registry, RegistryConfig, SpawnRequest};

use crate::support::unique_path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_form_is_denied_and_argv_runs() {
    let witness = unique_path("shell-witness");
    let registry = Registry::start(
        RegistryConfig::default().policy(PolicyChain::new().with(ShellPolicy::deny())),
    )
    .await
    .unwrap();

    let denied = registry
        .spawn(SpawnRequest::shell(format!(
            "echo ran > '{}'",
            witness.display()
        )))
        .await;
    match denied {
        Err(Error::PolicyDenied { rule, reason }) => {
            assert_eq!(rule, DenyRule::Shell);
            assert!(
                reason.contains("shell commands are not allowed"),
                "{reason}"
            );
        }
        other => panic!("expected a policy denial, got {other:?}"),
    }
    assert!(
        registry.list().await.unwrap().is_empty(),
        "nothing was started"
    );
    assert!(!witness.exists());

    let argv = SpawnRequest::argv(["touch".to_owned(), witness.display().to_string()]);
    let spawned = registry.spawn(argv).await.unwrap();
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .unwrap()
        .snapshot;
    assert_eq!(done.exit_code, Some(0));
    assert!(witness.exists());

    registry.shutdown().await.unwrap();
    let _ = fs::remove_file(&witness);
}
