//! Named profiles in a real registry: a spawn asks for one by name, it
//! applies after the registry's own policy (so it can narrow, not widen),
//! an unknown name is denied, and profiles can come from a JSON
//! description.

use std::collections::BTreeMap;
use std::fs;

use procward::policy::{DenyRule, PolicyChain, PolicyConfig, ShellPolicy};
use procward::{Error, Registry, RegistryConfig, Snapshot, SpawnRequest};

use crate::support::unique_path;

fn denial(result: procward::Result<Snapshot>) -> String {
    match result {
        Err(Error::PolicyDenied { reason, .. }) => reason,
        other => panic!("expected a policy denial, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_profile_is_denied_and_starts_nothing() {
    let witness = unique_path("unknown-profile-witness");
    let line = format!("echo ran > '{}'", witness.display());
    let registry = Registry::start(RegistryConfig::default().profile("known", PolicyChain::new()))
        .await
        .unwrap();

    let unknown = registry
        .spawn(SpawnRequest::shell(&line).sandbox_profile("nope"))
        .await;
    assert!(matches!(
        unknown,
        Err(Error::PolicyDenied {
            rule: DenyRule::Profile,
            ..
        })
    ));
    let reason = denial(unknown);
    assert!(
        reason.contains("unknown sandbox profile \"nope\""),
        "{reason}"
    );
    assert!(registry.list().await.unwrap().is_empty());
    assert!(!witness.exists());

    // The known (empty) profile allows it.
    let spawned = registry
        .spawn(SpawnRequest::shell(&line).sandbox_profile("known"))
        .await
        .unwrap();
    registry.wait(spawned.handle_id, None).await.unwrap();
    assert!(witness.exists());

    registry.shutdown().await.unwrap();
    let _ = fs::remove_file(&witness);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_cannot_loosen_the_registry_policy() {
    let registry = Registry::start(
        RegistryConfig::default()
            .policy(PolicyChain::new().with(ShellPolicy::deny()))
            .profile("open", PolicyChain::new()),
    )
    .await
    .unwrap();

    let reason = denial(
        registry
            .spawn(SpawnRequest::shell("true").sandbox_profile("open"))
            .await,
    );
    assert!(
        reason.contains("shell commands are not allowed"),
        "{reason}"
    );
    let reason = denial(registry.spawn(SpawnRequest::shell("true")).await);
    assert!(
        reason.contains("shell commands are not allowed"),
        "{reason}"
    );
    let spawned = registry
        .spawn(SpawnRequest::argv(["true"]).sandbox_profile("open"))
        .await
        .unwrap();
    registry.wait(spawned.handle_id, None).await.unwrap();

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_read_from_json_apply_by_name() {
    let json = r#"{
        "no-shell": { "allow_shell": false },
        "echo-only": { "allow_programs": ["/bin/echo"], "env_allow": [], "cwd_roots": ["/"] }
    }"#;
    let profiles: BTreeMap<String, PolicyConfig> = serde_json::from_str(json).unwrap();
    let config = profiles
        .iter()
        .fold(RegistryConfig::default(), |config, (name, profile)| {
            config.profile(name.as_str(), profile.build())
        });
    let registry = Registry::start(config).await.unwrap();

    let reason = denial(
        registry
            .spawn(SpawnRequest::shell("true").sandbox_profile("no-shell"))
            .await,
    );
    assert!(
        reason.contains("shell commands are not allowed"),
        "{reason}"
    );
    let reason = denial(
        registry
            .spawn(SpawnRequest::argv(["/bin/cat", "/dev/null"]).sandbox_profile("echo-only"))
            .await,
    );
    assert!(reason.contains("not in the allowlist"), "{reason}");

    // echo-only: the env allows nothing, so PATH is gone and a bare `echo`
    // cannot be found; the absolute path runs, from `/`, with an empty env.
    let reason = denial(
        registry
            .spawn(SpawnRequest::argv(["echo"]).sandbox_profile("echo-only"))
            .await,
    );
    assert!(reason.contains("no PATH"), "{reason}");
    let spawned = registry
        .spawn(SpawnRequest::argv(["/bin/echo", "hi"]).sandbox_profile("echo-only"))
        .await
        .unwrap();
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .unwrap()
        .snapshot;
    assert_eq!(done.stdout.text(), "hi\n");

    // Without a profile nothing applies.
    let spawned = registry.spawn(SpawnRequest::shell("true")).await.unwrap();
    registry.wait(spawned.handle_id, None).await.unwrap();

    registry.shutdown().await.unwrap();
}
