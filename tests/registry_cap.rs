//! The registry never holds more than its cap: a spawn at the cap evicts the
//! oldest finished handle or, when every handle runs, kills and evicts the
//! oldest running one.

#[path = "support/proc.rs"]
mod support;

use procward::{Error, HandleId, Registry, RegistryConfig, SpawnRequest, Status};

fn is_unknown<T>(result: &procward::Result<T>, id: HandleId) -> bool {
    matches!(result, Err(Error::UnknownHandle(named)) if *named == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seventy_two_quick_spawns_stay_within_the_default_cap() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    assert_eq!(RegistryConfig::default().max_handles, 64);

    let mut snaps = Vec::new();
    for i in 0..72 {
        let snap = registry
            .spawn(SpawnRequest::argv(["echo", &i.to_string()]))
            .await
            .unwrap();
        let end = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
        assert_eq!(end.stdout.text(), format!("{i}\n"));
        let listed = registry.list().await.unwrap();
        assert!(
            listed.len() <= 64,
            "{} handles after spawn {i}",
            listed.len()
        );
        assert_eq!(listed.len(), (i + 1).min(64));
        snaps.push(snap);
    }

    // The first eight, oldest first, made room for the last eight.
    for snap in &snaps[..8] {
        assert!(is_unknown(
            &registry.poll(snap.handle_id).await,
            snap.handle_id
        ));
    }
    for snap in &snaps[8..] {
        assert_eq!(
            registry.poll(snap.handle_id).await.unwrap().status,
            Status::Exited
        );
    }
    let listed: Vec<HandleId> = registry
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.handle_id)
        .collect();
    let expected: Vec<HandleId> = snaps[8..].iter().map(|s| s.handle_id).collect();
    assert_eq!(listed, expected, "listed oldest first");

    registry.shutdown().await.unwrap();
    for snap in &snaps {
        support::wait_group_gone(snap.pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_the_oldest_running_tree_is_killed_and_evicted() {
    let registry = Registry::start(RegistryConfig::default().max_handles(2))
        .await
        .unwrap();

    let oldest = registry
        .spawn(SpawnRequest::shell("sleep 300 & sleep 300"))
        .await
        .unwrap();
    let middle = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();
    let waiter = support::pending_wait(&registry, oldest.handle_id).await;

    let newest = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();

    // The pending wait is answered with the killed snapshot.
    let end = waiter.await.unwrap().unwrap();
    assert!(!end.timed_out);
    assert_eq!(end.snapshot.status, Status::Killed);
    assert_eq!(end.snapshot.signal, Some(9));
    assert_eq!(end.snapshot.handle_id, oldest.handle_id);
    support::wait_group_gone(oldest.pid).await;

    assert!(is_unknown(
        &registry.poll(oldest.handle_id).await,
        oldest.handle_id
    ));
    let listed: Vec<HandleId> = registry
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.handle_id)
        .collect();
    assert_eq!(listed, vec![middle.handle_id, newest.handle_id]);
    for snap in [&middle, &newest] {
        assert!(registry.poll(snap.handle_id).await.unwrap().running());
        assert!(support::is_alive(snap.pid));
    }

    registry.shutdown().await.unwrap();
    for snap in [&oldest, &middle, &newest] {
        support::wait_group_gone(snap.pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_handle_is_evicted_before_any_running_one() {
    let registry = Registry::start(RegistryConfig::default().max_handles(2))
        .await
        .unwrap();

    let running = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();
    let finished = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
    registry.wait(finished.handle_id, None).await.unwrap();
    // The registry learns of the end by a message of its own, which may
    // come after the wait's answer (see the ignored test below).
    support::eventually("the registry to list the finished handle as exited", || {
        listed_as(&registry, finished.handle_id, Status::Exited)
    })
    .await;

    let newest = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();
    assert!(is_unknown(
        &registry.poll(finished.handle_id).await,
        finished.handle_id
    ));
    assert!(registry.poll(running.handle_id).await.unwrap().running());
    assert!(support::is_alive(running.pid));

    registry.shutdown().await.unwrap();
    for snap in [&running, &finished, &newest] {
        support::wait_group_gone(snap.pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_whose_wait_returned_is_evicted_before_a_running_one() {
    let registry = Registry::start(RegistryConfig::default().max_handles(2))
        .await
        .unwrap();
    let running = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();

    for round in 0..50 {
        let quick = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
        let end = registry.wait(quick.handle_id, None).await.unwrap();
        assert_eq!(end.snapshot.status, Status::Exited);
        // At the cap: the handle just waited for must make room, not the
        // running one.
        let next = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
        let polled = registry.poll(running.handle_id).await;
        assert!(
            matches!(&polled, Ok(s) if s.running()),
            "round {round}: the running sleep was evicted: {polled:?}"
        );
        registry.wait(next.handle_id, None).await.unwrap();
        assert!(registry.release(next.handle_id).await.unwrap());
        support::wait_group_gone(quick.pid).await;
        support::wait_group_gone(next.pid).await;
    }

    registry.shutdown().await.unwrap();
    support::wait_group_gone(running.pid).await;
}

async fn listed_as(registry: &Registry, id: HandleId, status: Status) -> bool {
    registry
        .list()
        .await
        .expect("the registry lists its handles")
        .iter()
        .any(|s| s.handle_id == id && s.status == status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_of_zero_is_rejected() {
    let err = Registry::start(RegistryConfig::default().max_handles(0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err:?}");
}
