//! The cap policy: at a cap full of running handles, `Refuse` answers
//! `RegistryFull` and kills nothing, `Queue` makes the spawn wait for a
//! place (bounded), `Evict` kills the oldest (tests/registry_cap.rs). A
//! finished handle is evicted first under every policy.

use crate::support;

use procward::{
    CapPolicy, Error, ErrorKind, KillRequest, Registry, RegistryConfig, RegistryMsg, Snapshot,
    SpawnRequest, Status, Stdin, Unavailable,
};
use tokio::sync::oneshot;

/// Puts a spawn in the registry's mailbox now (so that what this task
/// sends next comes after it) and returns where its answer will come.
fn cast_spawn(
    registry: &Registry,
    request: SpawnRequest,
) -> oneshot::Receiver<procward::Result<Snapshot>> {
    let (tx, rx) = oneshot::channel();
    registry
        .actor()
        .cast(RegistryMsg::Spawn(request, tx.into()))
        .expect("the registry takes the spawn");
    rx
}

async fn registry(max_handles: usize, policy: CapPolicy) -> Registry {
    Registry::start(
        RegistryConfig::default()
            .max_handles(max_handles)
            .cap_policy(policy),
    )
    .await
    .expect("the registry starts")
}

/// A child that runs until its stdin is closed, then exits 0.
fn until_closed() -> SpawnRequest {
    SpawnRequest::shell("read line; exit 0").stdin(Stdin::Pipe)
}

/// `RegistryFull` from a cap of `max`, with the queue bound `policy` had.
fn is_full(result: &procward::Result<Snapshot>, max: usize, policy: CapPolicy) -> bool {
    let bound = match policy {
        CapPolicy::Queue { max_queued } => Some(max_queued),
        CapPolicy::Evict | CapPolicy::Refuse => None,
    };
    matches!(result, Err(Error::RegistryFull { max_handles, max_queued })
        if *max_handles == max && *max_queued == bound)
}

#[test]
fn the_library_queues_by_default() {
    assert_eq!(
        RegistryConfig::default().cap_policy,
        CapPolicy::Queue { max_queued: 1024 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuse_answers_registry_full_and_kills_nothing() {
    let registry = registry(2, CapPolicy::Refuse).await;
    let a = registry.spawn(until_closed()).await.unwrap();
    let b = registry.spawn(until_closed()).await.unwrap();

    let refused = registry.spawn(SpawnRequest::argv(["true"])).await;
    assert!(is_full(&refused, 2, CapPolicy::Refuse), "{refused:?}");
    let err = refused.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RegistryFull);
    for snap in [&a, &b] {
        assert!(registry.poll(snap.handle_id).await.unwrap().running());
        assert!(support::is_alive(snap.pid));
    }
    assert_eq!(registry.list().await.unwrap().len(), 2, "nothing started");

    // One ends on its own: its place is free, and the next spawn evicts
    // the finished handle (a receipt), not the running one.
    registry.close_stdin(a.handle_id).await.unwrap();
    let end = registry.wait(a.handle_id, None).await.unwrap().snapshot;
    assert_eq!(end.status, Status::Exited);
    let c = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
    assert!(registry.poll(a.handle_id).await.unwrap().evicted);
    assert!(registry.poll(b.handle_id).await.unwrap().running());

    registry.shutdown().await.unwrap();
    for snap in [&a, &b, &c] {
        support::wait_group_gone(snap.pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_waits_for_a_place_and_refuses_past_its_bound() {
    let policy = CapPolicy::Queue { max_queued: 1 };
    let registry = registry(2, policy).await;
    let a = registry.spawn(until_closed()).await.unwrap();
    let b = registry.spawn(until_closed()).await.unwrap();

    let mut queued = cast_spawn(&registry, SpawnRequest::argv(["echo", "queued"]));
    let counts = registry.counts().await.unwrap();
    assert_eq!((counts.running, counts.queued), (2, 1), "{counts:?}");
    // The queue of one is taken: the next spawn is refused.
    let over = registry.spawn(SpawnRequest::argv(["true"])).await;
    assert!(is_full(&over, 2, policy), "{over:?}");
    assert!(
        queued.try_recv().is_err(),
        "the queued spawn was answered early"
    );
    assert_eq!(registry.list().await.unwrap().len(), 2);

    // `a` ends on its own: the queued spawn starts in its place, and
    // nothing was killed.
    registry.close_stdin(a.handle_id).await.unwrap();
    let started = tokio::time::timeout(support::DEADLINE, queued)
        .await
        .expect("the queued spawn never started")
        .expect("the queued spawn is answered")
        .expect("the queued spawn starts");
    let done = registry
        .wait(started.handle_id, None)
        .await
        .unwrap()
        .snapshot;
    assert_eq!(done.stdout.text(), "queued\n");
    let a_end = registry.poll(a.handle_id).await.unwrap();
    assert_eq!(a_end.status, Status::Exited);
    assert!(registry.poll(b.handle_id).await.unwrap().running());

    registry.shutdown().await.unwrap();
    for snap in [&a, &b, &started] {
        support::wait_group_gone(snap.pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawn_may_choose_its_own_policy() {
    let registry = registry(1, CapPolicy::default()).await;
    let a = registry.spawn(until_closed()).await.unwrap();
    let refused = registry
        .spawn(SpawnRequest::argv(["true"]).cap_policy(CapPolicy::Refuse))
        .await;
    assert!(is_full(&refused, 1, CapPolicy::Refuse), "{refused:?}");

    let evicting = registry
        .spawn(SpawnRequest::argv(["true"]).cap_policy(CapPolicy::Evict))
        .await
        .unwrap();
    let a_end = registry.wait(a.handle_id, None).await.unwrap().snapshot;
    assert_eq!(a_end.status, Status::Killed);
    assert!(a_end.evicted);

    registry.shutdown().await.unwrap();
    for snap in [&a, &evicting] {
        support::wait_group_gone(snap.pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_owner_cancels_the_owners_queued_spawns() {
    let registry = registry(2, CapPolicy::Queue { max_queued: 8 }).await;
    let a = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]).owner("job"))
        .await
        .unwrap();
    let other = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]).owner("other"))
        .await
        .unwrap();
    let queued: Vec<_> = (0..3)
        .map(|_| cast_spawn(&registry, SpawnRequest::argv(["sleep", "300"]).owner("job")))
        .collect();

    let killed = registry
        .kill_owner("job", KillRequest::default())
        .await
        .unwrap();
    assert_eq!(killed.len(), 1);
    assert_eq!(killed[0].handle_id, a.handle_id);
    for q in queued {
        let answer = tokio::time::timeout(support::DEADLINE, q)
            .await
            .expect("a queued spawn is never answered")
            .expect("the queued spawn is answered");
        assert!(
            matches!(&answer, Err(Error::SpawnCancelled { owner }) if owner == "job"),
            "{answer:?}"
        );
    }
    assert!(registry.poll(other.handle_id).await.unwrap().running());
    assert_eq!(
        registry.list().await.unwrap().len(),
        2,
        "nothing else started"
    );

    registry.shutdown().await.unwrap();
    for snap in [&a, &other] {
        support::wait_group_gone(snap.pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_queued_spawns() {
    let registry = registry(1, CapPolicy::default()).await;
    let a = registry.spawn(until_closed()).await.unwrap();
    let queued = cast_spawn(&registry, SpawnRequest::argv(["true"]));
    // Answered after the spawn was handled (queued): ractor's stop would
    // otherwise overtake a message still in the mailbox.
    registry.list().await.unwrap();
    registry.shutdown().await.unwrap();
    let answer = queued.await.expect("the queued spawn is answered");
    assert!(
        matches!(
            answer,
            Err(Error::RegistryUnavailable {
                cause: Unavailable::Stopping
            })
        ),
        "{answer:?}"
    );
    support::wait_group_gone(a.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_spawn_whose_caller_gave_up_never_starts() {
    let registry = registry(1, CapPolicy::default()).await;
    let a = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();
    let abandoned = cast_spawn(&registry, SpawnRequest::argv(["sleep", "300"]));
    drop(abandoned);
    // Frees the place: the queue's head is the abandoned spawn, skipped.
    assert!(registry.release(a.handle_id).await.unwrap());
    // Had it started, it would hold the one place and this would be full.
    let b = registry
        .spawn(SpawnRequest::argv(["true"]).cap_policy(CapPolicy::Refuse))
        .await
        .unwrap();
    registry.wait(b.handle_id, None).await.unwrap();
    assert_eq!(registry.list().await.unwrap().len(), 1);
    registry.shutdown().await.unwrap();
    for snap in [&a, &b] {
        support::wait_group_gone(snap.pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_sent_without_waiting_does_not_count_as_seeing_the_result() {
    let registry = registry(2, CapPolicy::default()).await;
    let mut snaps = Vec::new();
    for _ in 0..2 {
        let (snap, mut feed) = registry
            .spawn_subscribed(SpawnRequest::argv(["true"]))
            .await
            .unwrap();
        // Ended, and the registry knows (its `Finished` came before the
        // exit event), but nobody has been given the status.
        while feed.recv().await.is_some() {}
        snaps.push(snap);
    }
    registry
        .kill_nowait(snaps[1].handle_id, KillRequest::default())
        .unwrap();
    // Both unseen: the oldest makes room, not the one killed without
    // waiting (a kill that returned the status would have made it "seen").
    let next = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
    assert!(registry.poll(snaps[0].handle_id).await.unwrap().evicted);
    assert!(!registry.poll(snaps[1].handle_id).await.unwrap().evicted);
    registry.shutdown().await.unwrap();
    for snap in snaps.iter().chain([&next]) {
        support::wait_group_gone(snap.pid).await;
    }
}
