//! A burst of spawns larger than the spawners' queue (256 places): the ones
//! past it wait for a place instead of failing, and every child is started,
//! answered and reaped.

use crate::support;

use std::collections::HashSet;

use procward::{Registry, RegistryConfig, SpawnRequest, Status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_the_spawn_queue_starts_every_child() {
    const BURST: usize = 600;
    let registry = Registry::start(RegistryConfig::default().max_handles(BURST))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..BURST)
        .map(|i| {
            let registry = registry.clone();
            tokio::spawn(async move {
                let request = SpawnRequest::shell(r#"echo "$MARK""#).env("MARK", i.to_string());
                let spawned = registry.spawn(request).await.unwrap();
                let end = registry
                    .wait(spawned.handle_id, None)
                    .await
                    .unwrap()
                    .snapshot;
                registry.release(spawned.handle_id).await.unwrap();
                (i, spawned.pid, end)
            })
        })
        .collect();
    let mut pids = HashSet::new();
    for task in tasks {
        let (i, pid, end) = task.await.unwrap();
        assert!(pids.insert(pid), "pid {pid} given twice");
        assert_eq!(end.status, Status::Exited);
        assert_eq!(end.stdout.text(), format!("{i}\n"));
    }
    assert_eq!(pids.len(), BURST);
    registry.shutdown().await.unwrap();
    for pid in pids {
        support::wait_group_gone(pid).await;
    }
}
