//! The concurrency caps count spawns still starting: a burst gets exactly
//! the cap, and the rest are denied, not queued.

use futures::future::join_all;
use procward::policy::{ConcurrencyLimit, DenyRule, PolicyChain};
use procward::{Error, KillRequest, Registry, RegistryConfig, SpawnRequest};

async fn burst(registry: &Registry, n: usize, owner: &str) -> (Vec<procward::Snapshot>, usize) {
    let spawns = (0..n)
        .map(|_| registry.spawn(SpawnRequest::argv(["sleep", "300"]).owner(owner.to_owned())));
    let mut started = Vec::new();
    let mut denied = 0;
    for result in join_all(spawns).await {
        match result {
            Ok(snap) => started.push(snap),
            Err(Error::PolicyDenied {
                rule: DenyRule::Concurrency,
                ..
            }) => denied += 1,
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    (started, denied)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_gets_exactly_the_overall_cap() {
    let registry = Registry::start(
        RegistryConfig::default()
            .max_handles(200)
            .policy(PolicyChain::new().with(ConcurrencyLimit::new().overall(5))),
    )
    .await
    .unwrap();
    let (started, denied) = burst(&registry, 50, "burst").await;
    assert_eq!(started.len(), 5);
    assert_eq!(denied, 45);
    let killed = registry
        .kill_owner("burst", KillRequest::default())
        .await
        .unwrap();
    assert_eq!(killed.len(), 5);
    registry.shutdown().await.unwrap();
    for snap in started {
        crate::support::wait_group_gone(snap.pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_one_owner_gets_exactly_its_cap() {
    let registry = Registry::start(
        RegistryConfig::default()
            .max_handles(200)
            .policy(PolicyChain::new().with(ConcurrencyLimit::new().per_owner(1))),
    )
    .await
    .unwrap();
    let (started, denied) = burst(&registry, 20, "one").await;
    assert_eq!((started.len(), denied), (1, 19));
    // Another owner is not held back by the first one's burst.
    let (other, _) = burst(&registry, 1, "two").await;
    assert_eq!(other.len(), 1);
    registry.shutdown().await.unwrap();
    for snap in started.into_iter().chain(other) {
        crate::support::wait_group_gone(snap.pid).await;
    }
}
