//! A wait with a timeout gives up on its own and leaves the process alone.

use std::time::Duration;

use procward::{Registry, RegistryConfig, Status};

use crate::support;
use crate::support::Gate;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_wait_leaves_the_process_running() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let gate = Gate::new();
    let snap = registry.spawn(gate.shell("echo through")).await.unwrap();

    let first = registry
        .wait(snap.handle_id, Some(Duration::from_millis(200)))
        .await
        .unwrap();
    assert!(first.timed_out);
    assert_eq!(first.snapshot.status, Status::Running);
    assert!(first.snapshot.running());
    assert_eq!(first.snapshot.ended_at, None);
    assert_eq!(first.snapshot.exit_code, None);
    assert_eq!(first.snapshot.handle_id, snap.handle_id);

    // Untouched: still running, as the registry and the OS see it.
    assert_eq!(
        registry.poll(snap.handle_id).await.unwrap().status,
        Status::Running
    );
    assert!(support::is_alive(snap.pid));
    assert!(!support::is_doomed(snap.pid));

    gate.open();
    let second = registry.wait(snap.handle_id, None).await.unwrap();
    assert!(!second.timed_out);
    assert_eq!(second.snapshot.status, Status::Exited);
    assert_eq!(second.snapshot.exit_code, Some(0));
    assert_eq!(second.snapshot.stdout.text(), "through\n");

    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_with_and_without_timeouts_each_get_their_own_answer() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let gate = Gate::new();
    let snap = registry.spawn(gate.shell("exit 5")).await.unwrap();
    let id = snap.handle_id;

    let patient = tokio::spawn({
        let registry = registry.clone();
        async move { registry.wait(id, None).await }
    });
    let long = tokio::spawn({
        let registry = registry.clone();
        async move { registry.wait(id, Some(support::DEADLINE * 10)).await }
    });
    // Two short waits time out while the others keep waiting.
    for _ in 0..2 {
        let short = registry
            .wait(id, Some(Duration::from_millis(50)))
            .await
            .unwrap();
        assert!(short.timed_out);
        assert!(short.snapshot.running());
    }
    assert!(!patient.is_finished());

    gate.open();
    let patient = patient.await.unwrap().unwrap();
    let long = long.await.unwrap().unwrap();
    assert!(!patient.timed_out && !long.timed_out);
    assert_eq!(patient.snapshot.exit_code, Some(5));
    assert_eq!(patient, long);

    // A wait with a timeout on a finished handle answers at once, not timed out.
    let after = registry
        .wait(id, Some(Duration::from_millis(1)))
        .await
        .unwrap();
    assert!(!after.timed_out);
    assert_eq!(after.snapshot, patient.snapshot);

    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_wait_leaves_the_process_alone() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let gate = Gate::new();
    let snap = registry.spawn(gate.shell("echo later")).await.unwrap();

    // Give up on a wait (cancel the future) before it can answer.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        registry.wait(snap.handle_id, None),
    )
    .await;
    assert!(gave_up.is_err());
    assert!(support::is_alive(snap.pid));
    assert!(registry.poll(snap.handle_id).await.unwrap().running());

    gate.open();
    let end = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
    assert_eq!(end.stdout.text(), "later\n");

    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}
