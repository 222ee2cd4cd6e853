//! The registry never holds more than its cap: a spawn at the cap evicts the
//! oldest finished handle or, when every handle runs, kills and evicts the
//! oldest running one. An evicted handle leaves a receipt that still
//! answers (without output), until the receipt cap pushes it out.

use procward::{Error, HandleId, Registry, RegistryConfig, SpawnRequest, Status};

use crate::support;

fn is_unknown<T>(result: &procward::Result<T>, id: HandleId) -> bool {
    matches!(result, Err(Error::UnknownHandle(named)) if *named == id)
}

/// The handles still held in full (receipts left out), oldest first.
async fn live(registry: &Registry) -> Vec<HandleId> {
    registry
        .list()
        .await
        .expect("the registry lists its handles")
        .into_iter()
        .filter(|s| !s.evicted)
        .map(|s| s.handle_id)
        .collect()
}

/// Polls `id` and checks it answers from a receipt with `status`.
async fn assert_receipt(registry: &Registry, id: HandleId, status: Status) -> procward::Snapshot {
    let receipt = registry.poll(id).await.expect("a receipt answers");
    assert!(receipt.evicted, "{id} is not marked evicted");
    assert_eq!(receipt.status, status);
    assert!(receipt.stdout.bytes.is_empty() && receipt.stderr.bytes.is_empty());
    assert!(receipt.ended_at.is_some());
    receipt
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
        let held = live(&registry).await.len();
        assert!(held <= 64, "{held} handles after spawn {i}");
        assert_eq!(held, (i + 1).min(64));
        snaps.push(snap);
    }

    // The first eight, oldest first, made room for the last eight, and left
    // receipts that keep the status and the byte count.
    for (i, snap) in snaps[..8].iter().enumerate() {
        let receipt = assert_receipt(&registry, snap.handle_id, Status::Exited).await;
        assert_eq!(receipt.exit_code, Some(0));
        assert_eq!(receipt.stdout.total_bytes, format!("{i}\n").len() as u64);
    }
    for snap in &snaps[8..] {
        assert_eq!(
            registry.poll(snap.handle_id).await.unwrap().status,
            Status::Exited
        );
    }
    let expected: Vec<HandleId> = snaps[8..].iter().map(|s| s.handle_id).collect();
    assert_eq!(live(&registry).await, expected, "listed oldest first");
    assert_eq!(
        registry.list().await.unwrap().len(),
        72,
        "receipts are listed"
    );

    registry.shutdown().await.unwrap();
    for snap in &snaps {
        support::wait_group_gone(snap.pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_the_oldest_running_tree_is_killed_and_evicted() {
    let registry = Registry::start(
        RegistryConfig::default()
            .max_handles(2)
            .cap_policy(procward::CapPolicy::Evict),
    )
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
    assert!(end.snapshot.evicted);
    support::wait_group_gone(oldest.pid).await;

    let receipt = assert_receipt(&registry, oldest.handle_id, Status::Killed).await;
    assert_eq!(receipt.signal, Some(9));
    assert_eq!(
        live(&registry).await,
        vec![middle.handle_id, newest.handle_id]
    );
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
    assert_receipt(&registry, finished.handle_id, Status::Exited).await;
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
async fn receipts_past_their_cap_are_unknown() {
    let registry = Registry::start(RegistryConfig::default().max_handles(1).max_receipts(1))
        .await
        .unwrap();
    let mut snaps = Vec::new();
    for _ in 0..3 {
        let snap = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
        registry.wait(snap.handle_id, None).await.unwrap();
        snaps.push(snap);
    }
    // The first receipt was pushed out by the second: unknown or expired.
    let first = registry.poll(snaps[0].handle_id).await;
    assert!(is_unknown(&first, snaps[0].handle_id), "{first:?}");
    assert!(
        first
            .unwrap_err()
            .to_string()
            .contains("unknown or expired")
    );
    assert_receipt(&registry, snaps[1].handle_id, Status::Exited).await;
    // Wait and kill answer from the receipt too; release forgets it.
    let waited = registry.wait(snaps[1].handle_id, None).await.unwrap();
    assert!(waited.snapshot.evicted && !waited.timed_out);
    let killed = registry
        .kill(snaps[1].handle_id, Default::default())
        .await
        .unwrap();
    assert_eq!(killed.status, Status::Exited);
    assert!(registry.release(snaps[1].handle_id).await.unwrap());
    assert!(is_unknown(
        &registry.poll(snaps[1].handle_id).await,
        snaps[1].handle_id
    ));
    assert!(!registry.release(snaps[1].handle_id).await.unwrap());
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_of_zero_is_rejected() {
    let err = Registry::start(RegistryConfig::default().max_handles(0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_agree_with_the_listing_through_evictions() {
    let registry = Registry::start(RegistryConfig::default().max_handles(4))
        .await
        .unwrap();
    let counts = registry.counts().await.unwrap();
    assert_eq!(
        (counts.running, counts.terminal, counts.handles()),
        (0, 0, 0)
    );

    let mut running = Vec::new();
    for _ in 0..3 {
        running.push(
            registry
                .spawn(SpawnRequest::argv(["sleep", "30"]))
                .await
                .unwrap(),
        );
    }
    for i in 0..4 {
        let snap = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
        registry.wait(snap.handle_id, None).await.unwrap();
        let counts = registry.counts().await.unwrap();
        let listed = registry.list().await.unwrap();
        assert_eq!(counts.handles(), listed.len(), "after spawn {i}");
        let listed_running = listed
            .iter()
            .filter(|s| s.status == Status::Running)
            .count();
        assert_eq!(counts.running, listed_running, "after spawn {i}");
        assert_eq!(counts.running, 3);
        assert_eq!(counts.starting, 0);
    }

    for snap in &running {
        registry
            .kill(snap.handle_id, Default::default())
            .await
            .unwrap();
    }
    let counts = registry.counts().await.unwrap();
    assert_eq!(counts.running, 0);
    assert_eq!(counts.handles(), registry.list().await.unwrap().len());
    registry.shutdown().await.unwrap();
    for snap in &running {
        support::wait_group_gone(snap.pid).await;
    }
}
