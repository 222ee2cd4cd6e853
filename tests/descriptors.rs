//! A running child costs this process three descriptors: its stdout and
//! stderr pipes and one pidfd (four with a piped stdin). This is the only
//! test in its binary, so the count sees nothing but its own children.

/// What the tests share. (The path is where rustc looks anyway; rustfmt
/// needs it spelled out to find the files.)
#[path = "support"]
mod support {
    pub(crate) mod proc;
    pub(crate) use proc::*;
}

use procward::{KillRequest, Registry, RegistryConfig, SpawnRequest};

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd is readable")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_running_child_holds_three_descriptors() {
    const CHILDREN: usize = 200;
    let registry = Registry::start(RegistryConfig::default().max_handles(CHILDREN + 8))
        .await
        .unwrap();
    // One spawn first, so the registry's, the OS worker's and the runtime's
    // own descriptors are all open before the count starts.
    let first = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]).owner("fd"))
        .await
        .unwrap();
    let before = open_descriptors();
    let mut pids = vec![first.pid];
    for _ in 0..CHILDREN {
        let snap = registry
            .spawn(SpawnRequest::argv(["sleep", "300"]).owner("fd"))
            .await
            .unwrap();
        pids.push(snap.pid);
    }
    let after = open_descriptors();
    let per_child = (after - before) as f64 / CHILDREN as f64;
    registry
        .kill_owner("fd", KillRequest::default())
        .await
        .unwrap();
    registry.shutdown().await.unwrap();
    for pid in pids {
        support::wait_group_gone(pid).await;
    }
    assert!(
        per_child <= 3.0,
        "{per_child:.2} descriptors per running child ({before} before, {after} after)"
    );
}
