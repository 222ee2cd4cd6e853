//! Concurrency caps in a real registry: past the cap per owner or overall a
//! spawn is denied (not queued) with a reason naming the cap and the count,
//! and a process that ended frees its place.

use procward::policy::{ConcurrencyLimit, DenyRule, PolicyChain};
use procward::{Error, KillRequest, Registry, RegistryConfig, Snapshot, SpawnRequest, Status};

fn denial(result: procward::Result<Snapshot>) -> String {
    match result {
        Err(Error::PolicyDenied { rule, reason }) => {
            assert_eq!(rule, DenyRule::Concurrency, "{reason}");
            reason
        }
        other => panic!("expected a policy denial, got {other:?}"),
    }
}

fn sleeper() -> SpawnRequest {
    SpawnRequest::argv(["sleep", "300"])
}

async fn limited(limit: ConcurrencyLimit) -> Registry {
    Registry::start(RegistryConfig::default().policy(PolicyChain::new().with(limit)))
        .await
        .expect("start the registry")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_owner_may_run_up_to_its_cap() {
    let registry = limited(ConcurrencyLimit::new().per_owner(2)).await;

    let first = registry.spawn(sleeper().owner("a")).await.unwrap();
    registry.spawn(sleeper().owner("a")).await.unwrap();
    let reason = denial(registry.spawn(sleeper().owner("a")).await);
    assert_eq!(
        reason,
        "too many running processes for owner \"a\": 2 running, the limit per owner is 2"
    );
    assert_eq!(
        registry.list().await.unwrap().len(),
        2,
        "the denied one is not queued"
    );

    // Other owners have caps of their own; unowned requests share one.
    registry.spawn(sleeper().owner("b")).await.unwrap();
    registry.spawn(sleeper()).await.unwrap();
    registry.spawn(sleeper()).await.unwrap();
    let reason = denial(registry.spawn(sleeper()).await);
    assert_eq!(
        reason,
        "too many running processes without an owner: 2 running, the limit per owner is 2"
    );

    // A finished process frees its place: once the kill has answered, the
    // registry knows.
    let killed = registry
        .kill(first.handle_id, KillRequest::default())
        .await
        .unwrap();
    assert_eq!(killed.status, Status::Killed);
    registry.spawn(sleeper().owner("a")).await.unwrap();
    denial(registry.spawn(sleeper().owner("a")).await);

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_may_run_up_to_its_overall_cap() {
    let registry = limited(ConcurrencyLimit::new().overall(3).per_owner(2)).await;

    registry.spawn(sleeper().owner("a")).await.unwrap();
    registry.spawn(sleeper().owner("b")).await.unwrap();
    let last = registry.spawn(sleeper()).await.unwrap();
    let reason = denial(registry.spawn(sleeper().owner("c")).await);
    assert_eq!(
        reason,
        "too many running processes: 3 running, the limit overall is 3"
    );
    assert_eq!(registry.list().await.unwrap().len(), 3);

    // Finished handles the registry still keeps do not count.
    let done = registry
        .kill(last.handle_id, KillRequest::default())
        .await
        .unwrap();
    assert!(!done.running());
    let next = registry.spawn(sleeper().owner("c")).await.unwrap();
    assert!(next.running());
    assert_eq!(registry.list().await.unwrap().len(), 4);

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_exits_by_itself_frees_its_place() {
    let registry = limited(ConcurrencyLimit::new().overall(1)).await;

    let quick = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
    let done = registry.wait(quick.handle_id, None).await.unwrap();
    assert_eq!(done.snapshot.status, Status::Exited);
    let slow = registry.spawn(sleeper()).await.unwrap();
    assert!(
        denial(registry.spawn(SpawnRequest::argv(["true"])).await)
            .contains("1 running, the limit overall is 1")
    );
    registry
        .kill(slow.handle_id, KillRequest::default())
        .await
        .unwrap();

    registry.shutdown().await.unwrap();
}
