//! Environment policies in a real registry: only allowed variables of ours
//! reach the child, removed ones reach it from nowhere, and variables the
//! request sets itself pass unless removed. Checked with `env -0`.

use std::collections::BTreeMap;

use procward::policy::{EnvPolicy, PolicyChain};
use procward::{Registry, RegistryConfig, SpawnRequest, Status};

/// The environment the child saw, from `env -0` (values may hold newlines).
async fn child_env(registry: &Registry, request: SpawnRequest) -> BTreeMap<String, String> {
    let spawned = registry.spawn(request).await.expect("spawn");
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .expect("wait")
        .snapshot;
    assert_eq!(done.status, Status::Exited, "{done:?}");
    assert_eq!(done.exit_code, Some(0), "{done:?}");
    done.stdout
        .text()
        .split('\0')
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// `env -0`, found without a PATH.
fn print_env() -> SpawnRequest {
    SpawnRequest::argv(["/usr/bin/env", "-0"])
}

/// Our own environment, the part a child can be given.
fn ours() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

fn owned(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_variables_are_inherited() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it for tests");
    let policy = EnvPolicy::new().allow(["CARGO_MANIFEST_DIR", "PROCWARD_NOT_SET_ANYWHERE"]);
    let registry =
        Registry::start(RegistryConfig::default().policy(PolicyChain::new().with(policy)))
            .await
            .unwrap();

    // A variable the request sets passes, allowed or not; its own value
    // of an allowed one wins over ours.
    let env = child_env(&registry, print_env().env("MINE", "x")).await;
    assert_eq!(
        env,
        owned(&[("CARGO_MANIFEST_DIR", &manifest), ("MINE", "x")])
    );
    let env = child_env(&registry, print_env().env("CARGO_MANIFEST_DIR", "/mine")).await;
    assert_eq!(env, owned(&[("CARGO_MANIFEST_DIR", "/mine")]));
    // A request that clears its environment inherits nothing.
    let env = child_env(&registry, print_env().clear_env().env("ONLY", "me")).await;
    assert_eq!(env, owned(&[("ONLY", "me")]));

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_variables_reach_the_child_from_nowhere() {
    let policy = EnvPolicy::new().remove(["CARGO_*", "SECRET"]);
    let registry =
        Registry::start(RegistryConfig::default().policy(PolicyChain::new().with(policy)))
            .await
            .unwrap();

    let request = print_env()
        .env("SECRET", "s")
        .env("KEEP", "1")
        .env("CARGO_TARGET_DIR", "/mine");
    let env = child_env(&registry, request).await;
    let mut expected: BTreeMap<String, String> = ours()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("CARGO_") && name != "SECRET")
        .collect();
    expected.insert("KEEP".into(), "1".into());
    assert_eq!(env, expected);
    assert!(env.contains_key("PATH"), "the rest is still inherited");

    // Through a shell as well: what the shell sees is what it was given.
    let spawned = registry
        .spawn(SpawnRequest::shell("printf '%s' \"${SECRET-unset}\"").env("SECRET", "s"))
        .await
        .unwrap();
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .unwrap()
        .snapshot;
    assert_eq!(done.stdout.text(), "unset");

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_narrows_with_remove_after_the_registry_allowlist() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it for tests");
    let registry = Registry::start(
        RegistryConfig::default()
            .policy(PolicyChain::new().with(EnvPolicy::new().allow(["CARGO_MANIFEST_DIR", "PATH"])))
            .profile(
                "no-path",
                PolicyChain::new().with(EnvPolicy::new().remove(["PATH"])),
            ),
    )
    .await
    .unwrap();

    let env = child_env(&registry, print_env().sandbox_profile("no-path")).await;
    assert_eq!(env, owned(&[("CARGO_MANIFEST_DIR", &manifest)]));

    registry.shutdown().await.unwrap();
}
