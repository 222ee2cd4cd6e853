//! Kill ends the process and its whole tree: SIGKILL by default, or a gentler
//! signal with a grace before SIGKILL; killing a finished handle changes
//! nothing.

use std::time::{Duration, Instant};

use procward::{KillRequest, Registry, RegistryConfig, RegistryMsg, SpawnRequest, Status};

use crate::support;

/// Starts a shell running `extra`, two background `sleep`s and a foreground
/// one, and returns once the shell has printed `ready`: the tree exists (and
/// `extra` has run) when the test kills it. Also returns the pids of the
/// background sleeps.
async fn spawn_tree(registry: &Registry, extra: &str) -> (procward::Snapshot, Vec<u32>) {
    let snap = registry
        .spawn(SpawnRequest::shell(format!(
            "{extra} sleep 300 & echo $!; sleep 300 & echo $!; echo ready; sleep 300; echo x"
        )))
        .await
        .expect("the tree starts");
    let ready = support::wait_for_stdout(registry, snap.handle_id, "ready").await;
    let pids = ready
        .stdout
        .text()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect::<Vec<u32>>();
    assert_eq!(pids.len(), 2, "{ready:?}");
    for &pid in &pids {
        let member = support::stat(pid).expect("the background sleep runs");
        assert_eq!(member.pgrp, support::raw_pid(snap.pid), "{member:?}");
    }
    (snap, pids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_ends_the_whole_group() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let (snap, sleeps) = spawn_tree(&registry, "").await;

    let killed = registry
        .kill(snap.handle_id, KillRequest::default())
        .await
        .unwrap();
    assert_eq!(killed.status, Status::Killed);
    assert!(!killed.running());
    assert_eq!(killed.signal, Some(9));
    assert_eq!(killed.exit_code, None);
    assert!(killed.ended_at.is_some());
    assert!(!killed.stdout.text().contains('x'), "{killed:?}");

    // When kill returns, the leader is reaped and every member of its group
    // has been sent SIGKILL.
    assert!(support::stat(snap.pid).is_none(), "the leader is reaped");
    for &pid in &sleeps {
        assert!(support::is_doomed(pid), "{:?}", support::stat(pid));
    }
    support::wait_group_gone(snap.pid).await;

    // Terminal for good: later answers are the same snapshot.
    assert_eq!(registry.poll(snap.handle_id).await.unwrap(), killed);
    assert_eq!(
        registry.wait(snap.handle_id, None).await.unwrap().snapshot,
        killed
    );
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_grace_ends_a_tree_that_obeys() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let (snap, _) = spawn_tree(&registry, "").await;

    // The grace is far longer than the test's deadline: only SIGTERM can
    // have ended the tree if the answer names signal 15.
    let killed = registry
        .kill(
            snap.handle_id,
            KillRequest::terminate(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    assert_eq!(killed.status, Status::Killed);
    assert_eq!(killed.signal, Some(15));
    assert_eq!(killed.exit_code, None);
    support::wait_group_gone(snap.pid).await;

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_that_ignores_sigterm_gets_sigkill_after_the_grace() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    // Ignored signals stay ignored across fork and exec: every member of
    // the tree ignores SIGTERM.
    let (snap, sleeps) = spawn_tree(&registry, "trap '' TERM;").await;

    let grace = Duration::from_millis(300);
    let asked = Instant::now();
    let killed = registry
        .kill(snap.handle_id, KillRequest::terminate(grace))
        .await
        .unwrap();
    assert!(
        asked.elapsed() >= grace,
        "answered before the grace had passed"
    );
    assert_eq!(killed.status, Status::Killed);
    assert_eq!(killed.signal, Some(9));
    for &pid in &sleeps {
        assert!(support::is_doomed(pid), "{:?}", support::stat(pid));
    }
    support::wait_group_gone(snap.pid).await;

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gentle_kill_without_grace_uses_the_registry_kill_grace() {
    let grace = Duration::from_millis(300);
    let registry = Registry::start(RegistryConfig::default().kill_grace(grace))
        .await
        .unwrap();
    let (snap, _) = spawn_tree(&registry, "trap '' TERM;").await;

    let asked = Instant::now();
    let killed = registry
        .kill(
            snap.handle_id,
            KillRequest::default().signal(procward::Signal::TERM),
        )
        .await
        .unwrap();
    assert!(asked.elapsed() >= grace);
    assert_eq!(killed.status, Status::Killed);
    assert_eq!(killed.signal, Some(9));
    support::wait_group_gone(snap.pid).await;

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_finished_handle_reports_its_real_end() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let snap = registry
        .spawn(SpawnRequest::shell("echo bye; exit 4"))
        .await
        .unwrap();
    let done = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
    assert_eq!(done.status, Status::Exited);
    assert_eq!(done.exit_code, Some(4));

    for request in [
        KillRequest::default(),
        KillRequest::terminate(Duration::from_millis(10)),
    ] {
        let again = registry.kill(snap.handle_id, request).await.unwrap();
        assert_eq!(again, done, "a kill after the end changes nothing");
    }
    assert_eq!(registry.poll(snap.handle_id).await.unwrap(), done);

    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_kills_get_the_same_answer() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let (snap, _) = spawn_tree(&registry, "trap '' TERM;").await;

    // A gentle kill waiting out its grace, then a SIGKILL that overtakes it:
    // both answer once the handle is terminal, with the same snapshot. The
    // gentle one is cast directly, so it is queued before the SIGKILL is
    // sent the same way; requests about one handle sent the same way are
    // handled in order (`Registry::kill` would go past the mailbox).
    let (tx, gentle) = ractor::concurrency::oneshot();
    registry
        .actor()
        .cast(RegistryMsg::Kill(
            snap.handle_id,
            KillRequest::terminate(Duration::from_secs(600)),
            tx.into(),
        ))
        .unwrap();
    let hard = ractor::call!(
        registry.actor(),
        RegistryMsg::Kill,
        snap.handle_id,
        KillRequest::default()
    )
    .unwrap()
    .unwrap();
    let gentle = gentle.await.unwrap().unwrap();
    assert_eq!(hard.signal, Some(9));
    assert_eq!(hard, gentle);
    assert_eq!(hard.status, Status::Killed);
    support::wait_group_gone(snap.pid).await;
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_racing_the_exit_settles_once() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();

    // Whichever of the kill and the exit the process actor handles first
    // decides the status; after that, every answer is the same snapshot.
    for _ in 0..30 {
        let snap = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
        let killed = registry
            .kill(snap.handle_id, KillRequest::default())
            .await
            .unwrap();
        assert!(
            matches!(killed.status, Status::Killed | Status::Exited),
            "{killed:?}"
        );
        assert_eq!(registry.poll(snap.handle_id).await.unwrap(), killed);
        let waited = registry.wait(snap.handle_id, None).await.unwrap();
        assert_eq!(waited.snapshot, killed);
        let again = registry
            .kill(snap.handle_id, KillRequest::default())
            .await
            .unwrap();
        assert_eq!(again, killed);
        assert!(registry.release(snap.handle_id).await.unwrap());
        support::wait_group_gone(snap.pid).await;
    }
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_snapshot_always_names_the_signal() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();

    // `killed` says procward ended the process: then the process must have
    // died of procward's signal, not exited on its own with a code.
    let mut seen = (0, 0);
    for _ in 0..200 {
        let snap = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
        let killed = registry
            .kill(snap.handle_id, KillRequest::default())
            .await
            .unwrap();
        match killed.status {
            Status::Killed => {
                seen.0 += 1;
                assert_eq!(
                    (killed.exit_code, killed.signal),
                    (None, Some(9)),
                    "{killed:?}"
                );
            }
            Status::Exited => {
                seen.1 += 1;
                assert_eq!(
                    (killed.exit_code, killed.signal),
                    (Some(0), None),
                    "{killed:?}"
                );
            }
            other => panic!("unexpected status {other}"),
        }
        assert!(registry.release(snap.handle_id).await.unwrap());
        support::wait_group_gone(snap.pid).await;
    }
    eprintln!("killed {} times, exited first {} times", seen.0, seen.1);
    registry.shutdown().await.unwrap();
}
