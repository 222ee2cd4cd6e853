//! Nothing outlives the registry: after a mixed workload and a shutdown, no
//! process is left whose parent is this test process, alive or zombie, and
//! every process group the workload made is empty.
//!
//! This is the only test in its binary, so no other test's children can be
//! mistaken for leaks.

/// What the tests share. (The path is where rustc looks anyway; rustfmt
/// needs it spelled out to find the files.)
#[path = "support"]
mod support {
    pub(crate) mod proc;
    pub(crate) use proc::*;
}

use std::time::Duration;

use procward::{KillRequest, Registry, RegistryConfig, SpawnRequest, Status};
use rustix::process::{Pid, Signal, kill_process};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_workload_leaves_no_process_behind() {
    let me = std::process::id();
    let registry = Registry::start(
        RegistryConfig::default()
            .max_handles(8)
            .cap_policy(procward::CapPolicy::Evict)
            .drain_grace(Duration::from_millis(200))
            .kill_grace(Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let mut pids = Vec::new();

    // Quick exits, waited for.
    for i in 0..6 {
        let snap = registry
            .spawn(SpawnRequest::shell(format!("echo {i}; exit {i}")))
            .await
            .unwrap();
        let end = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
        assert_eq!(end.exit_code, Some(i));
        pids.push(snap.pid);
    }

    // Trees: killed, gently killed, timed out, drained, released, killed
    // from outside, and one left running for the shutdown.
    let tree = "sleep 300 & sleep 300 & echo ready; sleep 300";
    let killed = registry.spawn(SpawnRequest::shell(tree)).await.unwrap();
    let gentle = registry
        .spawn(SpawnRequest::shell(format!("trap '' TERM; {tree}")))
        .await
        .unwrap();
    let timed = registry
        .spawn(SpawnRequest::shell(tree).timeout(Duration::from_millis(200)))
        .await
        .unwrap();
    let drained = registry
        .spawn(SpawnRequest::shell("sleep 300 & echo started"))
        .await
        .unwrap();
    let released = registry.spawn(SpawnRequest::shell(tree)).await.unwrap();
    let external = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();
    for snap in [&killed, &gentle, &timed, &drained, &released, &external] {
        pids.push(snap.pid);
    }

    support::wait_for_stdout(&registry, killed.handle_id, "ready").await;
    let end = registry
        .kill(killed.handle_id, KillRequest::default())
        .await
        .unwrap();
    assert_eq!(end.status, Status::Killed);

    support::wait_for_stdout(&registry, gentle.handle_id, "ready").await;
    let end = registry
        .kill(
            gentle.handle_id,
            KillRequest::terminate(Duration::from_millis(100)),
        )
        .await
        .unwrap();
    assert_eq!((end.status, end.signal), (Status::Killed, Some(9)));

    let end = registry.wait(timed.handle_id, None).await.unwrap().snapshot;
    assert_eq!(end.status, Status::TimedOut);

    let end = registry
        .wait(drained.handle_id, None)
        .await
        .unwrap()
        .snapshot;
    assert_eq!(end.stdout.text(), "started\n");

    assert!(registry.release(released.handle_id).await.unwrap());

    kill_process(
        Pid::from_raw(i32::try_from(external.pid).unwrap()).unwrap(),
        Signal::KILL,
    )
    .unwrap();
    let end = registry
        .wait(external.handle_id, None)
        .await
        .unwrap()
        .snapshot;
    assert_eq!((end.status, end.signal), (Status::Exited, Some(9)));

    // A process actor that dies: its child is killed and reaped on drop.
    let orphaned = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();
    pids.push(orphaned.pid);
    registry
        .actor()
        .get_children()
        .into_iter()
        .for_each(|cell| cell.kill());
    support::eventually("the failed handle to turn terminal", || async {
        registry
            .poll(orphaned.handle_id)
            .await
            .is_ok_and(|s| s.failure.is_some())
    })
    .await;

    // Evictions: more running trees than the cap holds.
    for _ in 0..10 {
        let snap = registry.spawn(SpawnRequest::shell(tree)).await.unwrap();
        pids.push(snap.pid);
    }
    let live = registry.list().await.unwrap();
    assert!(live.iter().filter(|s| !s.evicted).count() <= 8);

    // Failed spawns start nothing.
    assert!(
        registry
            .spawn(SpawnRequest::argv(["procward-no-such-program"]))
            .await
            .is_err()
    );

    // A second registry, stopped by dropping its handle with trees running.
    let dropped = Registry::start(RegistryConfig::default()).await.unwrap();
    let dropped_actor = dropped.actor().clone();
    for _ in 0..3 {
        let snap = dropped.spawn(SpawnRequest::shell(tree)).await.unwrap();
        pids.push(snap.pid);
    }
    drop(dropped);
    dropped_actor.wait(Some(support::DEADLINE)).await.unwrap();

    registry.shutdown().await.unwrap();

    for pgid in pids {
        support::wait_group_gone(pgid).await;
    }
    // Children killed by a dropped process actor are reaped on a thread of
    // their own: give them the deadline.
    let mut left = support::children_of(me);
    let start = std::time::Instant::now();
    while !left.is_empty() && start.elapsed() < support::DEADLINE {
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = support::children_of(me);
    }
    assert!(left.is_empty(), "left behind, alive or zombie: {left:?}");
}
