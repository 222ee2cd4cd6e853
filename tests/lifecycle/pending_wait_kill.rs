//! A pending wait never delays a kill (or a poll) of the same handle.

use procward::{KillRequest, Registry, RegistryConfig, SpawnRequest, Status};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_overtakes_a_pending_wait_and_both_get_the_same_answer() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let snap = registry
        .spawn(SpawnRequest::shell("sleep 3000; echo never"))
        .await
        .unwrap();

    let waits = [
        support::pending_wait(&registry, snap.handle_id).await,
        support::pending_wait(&registry, snap.handle_id).await,
    ];
    // The waits are held by the process actor; polls still answer.
    let polled = registry.poll(snap.handle_id).await.unwrap();
    assert!(polled.running());

    // If a pending wait blocked the actor, this kill would wait for the
    // sleep; the deadline is far shorter.
    let killed = tokio::time::timeout(
        support::DEADLINE,
        registry.kill(snap.handle_id, KillRequest::default()),
    )
    .await
    .expect("the kill was held up by the pending wait")
    .unwrap();
    assert_eq!(killed.status, Status::Killed);
    assert_eq!(killed.signal, Some(9));

    for wait in waits {
        let outcome = wait.await.unwrap().unwrap();
        assert!(!outcome.timed_out);
        assert_eq!(outcome.snapshot, killed);
    }
    support::wait_group_gone(snap.pid).await;
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_handles_are_not_delayed_by_a_pending_wait() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let slow = registry
        .spawn(SpawnRequest::argv(["sleep", "3000"]))
        .await
        .unwrap();
    let wait = support::pending_wait(&registry, slow.handle_id).await;

    let quick = registry
        .spawn(SpawnRequest::argv(["echo", "quick"]))
        .await
        .unwrap();
    let end = tokio::time::timeout(support::DEADLINE, registry.wait(quick.handle_id, None))
        .await
        .expect("a wait on another handle blocked this one")
        .unwrap();
    assert_eq!(end.snapshot.stdout.text(), "quick\n");

    registry
        .kill(slow.handle_id, KillRequest::default())
        .await
        .unwrap();
    assert_eq!(wait.await.unwrap().unwrap().snapshot.status, Status::Killed);
    registry.shutdown().await.unwrap();
    support::wait_group_gone(slow.pid).await;
    support::wait_group_gone(quick.pid).await;
}

/// Waits still queued in the registry's mailbox when `shutdown` is called
/// are answered with the `killed` snapshot, not dropped: the registry
/// drains its mailbox before it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wait_queued_before_shutdown_gets_the_killed_snapshot() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let mut snaps = Vec::new();
    for _ in 0..20 {
        snaps.push(
            registry
                .spawn(SpawnRequest::argv(["sleep", "300"]))
                .await
                .unwrap(),
        );
    }
    // Sent without awaiting anything in between: 1,000 waits sit in the
    // registry's mailbox when the shutdown starts.
    let mut answers = Vec::new();
    for _ in 0..50 {
        for snap in &snaps {
            let (tx, rx) = ractor::concurrency::oneshot();
            registry
                .actor()
                .cast(procward::RegistryMsg::Wait(snap.handle_id, None, tx.into()))
                .unwrap();
            answers.push(rx);
        }
    }
    registry.shutdown().await.unwrap();
    for (n, answer) in answers.into_iter().enumerate() {
        let outcome = answer
            .await
            .unwrap_or_else(|_| panic!("wait {n} got no answer"))
            .unwrap_or_else(|err| panic!("wait {n} failed: {err}"));
        assert_eq!(outcome.snapshot.status, Status::Killed, "wait {n}");
    }
    for snap in &snaps {
        support::wait_group_gone(snap.pid).await;
    }
}
