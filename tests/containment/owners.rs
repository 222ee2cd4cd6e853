//! Owners: list, kill and release by owner; at the cap a spawn evicts its
//! own owner's handles first, and seen results before unseen ones.

use procward::{Clock, KillRequest, ListFilter, Registry, RegistryConfig, SpawnRequest, Status};
use time::macros::datetime;

fn config() -> RegistryConfig {
    RegistryConfig::default().reap_orphans(true)
}

fn by(owner: &str) -> ListFilter {
    ListFilter::default().owner(owner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_owner_ends_only_that_owners_running_trees() {
    let registry = Registry::start(config()).await.unwrap();
    let mut mine = Vec::new();
    for _ in 0..3 {
        let snap = registry
            .spawn(SpawnRequest::shell("sleep 300 & sleep 300").owner("script-1"))
            .await
            .unwrap();
        mine.push(snap);
    }
    let done = registry
        .spawn(SpawnRequest::argv(["true"]).owner("script-1"))
        .await
        .unwrap();
    registry.wait(done.handle_id, None).await.unwrap();
    let other = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]).owner("script-2"))
        .await
        .unwrap();
    let nobody = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();

    let killed = registry
        .kill_owner("script-1", KillRequest::default())
        .await
        .unwrap();
    let mut killed_ids: Vec<_> = killed.iter().map(|s| s.handle_id).collect();
    killed_ids.sort();
    assert_eq!(
        killed_ids,
        mine.iter().map(|s| s.handle_id).collect::<Vec<_>>()
    );
    assert!(killed.iter().all(|s| s.status == Status::Killed));
    // reap_orphans: when the kill returns, nothing of those trees is left.
    for snap in &mine {
        assert!(!std::path::Path::new(&format!("/proc/{}", snap.pid)).exists());
    }
    assert!(registry.poll(other.handle_id).await.unwrap().running());
    assert!(registry.poll(nobody.handle_id).await.unwrap().running());
    assert_eq!(
        registry.poll(done.handle_id).await.unwrap().status,
        Status::Exited
    );

    // Listing by owner and status.
    let running_of_2 = registry
        .list_where(
            ListFilter::default()
                .owner("script-2")
                .status(Status::Running),
        )
        .await
        .unwrap();
    assert_eq!(running_of_2.len(), 1);
    assert_eq!(running_of_2[0].owner.as_deref(), Some("script-2"));
    assert_eq!(registry.list_where(by("script-1")).await.unwrap().len(), 4);
    let killed_of_1 = registry
        .list_where(
            ListFilter::default()
                .owner("script-1")
                .status(Status::Killed),
        )
        .await
        .unwrap();
    assert_eq!(killed_of_1.len(), 3);

    // An owner with nothing running: nothing to kill.
    assert!(
        registry
            .kill_owner("nobody", KillRequest::default())
            .await
            .unwrap()
            .is_empty()
    );
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_owner_forgets_every_handle_of_that_owner() {
    let registry = Registry::start(config()).await.unwrap();
    let running = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]).owner("session"))
        .await
        .unwrap();
    let finished = registry
        .spawn(SpawnRequest::argv(["true"]).owner("session"))
        .await
        .unwrap();
    registry.wait(finished.handle_id, None).await.unwrap();
    let kept = registry
        .spawn(SpawnRequest::argv(["true"]).owner("other"))
        .await
        .unwrap();

    assert_eq!(registry.release_owner("session").await.unwrap(), 2);
    // The running tree was killed and reaped before the answer.
    assert!(!std::path::Path::new(&format!("/proc/{}", running.pid)).exists());
    assert!(registry.poll(running.handle_id).await.is_err());
    assert!(registry.poll(finished.handle_id).await.is_err());
    assert!(registry.poll(kept.handle_id).await.is_ok());
    assert!(registry.list_where(by("session")).await.unwrap().is_empty());
    assert_eq!(registry.release_owner("session").await.unwrap(), 0);
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_spawn_evicts_its_own_owners_results_first() {
    let registry = Registry::start(config().max_handles(3)).await.unwrap();
    // Three finished handles: one of "flood", two of "quiet".
    let mut quiet = Vec::new();
    for owner in ["quiet", "flood", "quiet"] {
        let snap = registry
            .spawn(SpawnRequest::argv(["true"]).owner(owner))
            .await
            .unwrap();
        // Finished, but nobody has seen the result: use list, not wait.
        let mut feed = registry.subscribe(snap.handle_id).await.unwrap();
        while feed.recv().await.is_some() {}
        if owner == "quiet" {
            quiet.push(snap);
        }
    }
    // The flooding owner spawns: its own result goes, not the older quiet one.
    let flood_new = registry
        .spawn(SpawnRequest::argv(["true"]).owner("flood"))
        .await
        .unwrap();
    for snap in &quiet {
        let polled = registry.poll(snap.handle_id).await.unwrap();
        assert!(!polled.evicted, "a quiet owner's result was evicted");
    }
    let flood: Vec<_> = registry
        .list_where(by("flood"))
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.evicted)
        .collect();
    assert_eq!(flood.len(), 1);
    assert_ne!(flood[0].handle_id, flood_new.handle_id);
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seen_results_are_evicted_before_unseen_ones() {
    let registry = Registry::start(config().max_handles(2)).await.unwrap();
    let unseen = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
    let seen = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
    // Both finish; only `seen` is waited for (its status is returned).
    let mut feed = registry.subscribe(unseen.handle_id).await.unwrap();
    while feed.recv().await.is_some() {}
    registry.wait(seen.handle_id, None).await.unwrap();

    registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
    // The older but unseen result stays; the seen one made room.
    let seen_now = registry.poll(seen.handle_id).await.unwrap();
    assert!(seen_now.evicted);
    assert!(!registry.poll(unseen.handle_id).await.unwrap().evicted);
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_come_from_the_registry_clock() {
    let at = datetime!(2030-01-02 03:04:05 UTC);
    let registry = Registry::start(config().clock(Clock::from_fn(move || at)))
        .await
        .unwrap();
    let snap = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
    assert_eq!(snap.started_at, at);
    let done = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
    assert_eq!((done.started_at, done.ended_at), (at, Some(at)));
    assert_eq!(registry.list().await.unwrap()[0].started_at, at);
    registry.shutdown().await.unwrap();
}
