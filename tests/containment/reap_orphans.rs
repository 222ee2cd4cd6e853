//! Orphan-reaping mode: the registry makes this process a child subreaper,
//! so a tree's orphans come to it, and a handle turns terminal only once
//! every member of its group is dead and reaped.
//!
//! Subreaping is process-wide and permanent: every test in this binary uses
//! the mode, so no other test's orphans end up here unreaped.

use std::time::Duration;

use procward::{KillRequest, Registry, RegistryConfig, SpawnRequest, Status};

use crate::support;

fn config() -> RegistryConfig {
    RegistryConfig::default()
        .reap_orphans(true)
        .drain_grace(Duration::from_millis(200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_kill_returns_nothing_of_the_tree_is_left() {
    let registry = Registry::start(config()).await.unwrap();
    let snap = registry
        .spawn(SpawnRequest::shell(
            "sleep 300 & sleep 300 & (sleep 300 &); echo ready; sleep 300",
        ))
        .await
        .unwrap();
    support::wait_for_stdout(&registry, snap.handle_id, "ready").await;
    assert!(support::group_members(snap.pid).len() >= 4);

    let killed = registry
        .kill(snap.handle_id, KillRequest::default())
        .await
        .unwrap();
    assert_eq!(killed.status, Status::Killed);
    // Not even a zombie: the orphans were handed to us and reaped.
    let left = support::group_members(snap.pid);
    assert!(left.is_empty(), "{left:?}");

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_tree_is_fully_reaped_before_the_wait_answers() {
    let registry = Registry::start(config()).await.unwrap();
    let snap = registry
        .spawn(SpawnRequest::shell("sleep 300 & sleep 300 & echo started"))
        .await
        .unwrap();

    let end = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
    assert_eq!(end.status, Status::Exited);
    assert_eq!(end.stdout.text(), "started\n");
    let left = support::group_members(snap.pid);
    assert!(left.is_empty(), "{left:?}");

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reaps_every_tree() {
    let registry = Registry::start(config()).await.unwrap();
    let mut pids = Vec::new();
    for _ in 0..3 {
        let snap = registry
            .spawn(SpawnRequest::shell(
                "sleep 300 & sleep 300 & echo ready; wait",
            ))
            .await
            .unwrap();
        support::wait_for_stdout(&registry, snap.handle_id, "ready").await;
        pids.push(snap.pid);
    }

    registry.shutdown().await.unwrap();
    for pid in pids {
        let left = support::group_members(pid);
        assert!(left.is_empty(), "{left:?}");
    }
}
