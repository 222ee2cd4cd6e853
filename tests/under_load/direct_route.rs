//! The direct route (`Registry::poll`, `wait` and `kill` past the
//! registry's mailbox) racing what changes the registry's index: natural
//! ends, kills, releases, evictions and the shutdown, with hundreds of
//! real children. Every answer must be one the registry itself could have
//! given at some moment during the call, no call may hang, and a caller
//! who has seen a terminal status must be remembered for the eviction
//! order. And the route must really pass the registry: a poll does not
//! wait behind the registry's queue.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use procward::{
    CapPolicy, Error, HandleId, KillRequest, ListFilter, Registry, RegistryConfig, RegistryMsg,
    Snapshot, SpawnRequest, Status,
};

/// Longer than any answer may take on two loaded cores: past it a call
/// counts as hung.
const HANG: Duration = Duration::from_secs(60);

/// What one caller has seen of one handle, in the order it saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Running,
    Terminal(Status),
    Receipt(Status),
    Unknown,
}

/// The answer as a [`Seen`], or a panic naming what no registry answers.
fn seen(id: HandleId, what: &str, answer: procward::Result<Snapshot>) -> Seen {
    match answer {
        Ok(snapshot) => {
            assert_eq!(snapshot.handle_id, id, "{what} answered another handle");
            match (snapshot.status.is_terminal(), snapshot.evicted) {
                (false, _) => Seen::Running,
                (true, false) => Seen::Terminal(snapshot.status),
                (true, true) => Seen::Receipt(snapshot.status),
            }
        }
        Err(Error::UnknownHandle(unknown)) => {
            assert_eq!(unknown, id);
            Seen::Unknown
        }
        Err(err) => panic!("{what} of {id}: no registry answers {err:?}"),
    }
}

/// Whether a caller may see `next` after `before`: a handle only moves
/// forward (running, terminal, receipt, unknown), its terminal status
/// never changes, and an evicted or forgotten handle never comes back.
fn may_follow(before: Seen, next: Seen) -> bool {
    use Seen::*;
    match (before, next) {
        (Running, _) => true,
        (Terminal(a), Terminal(b)) | (Terminal(a), Receipt(b)) | (Receipt(a), Receipt(b)) => a == b,
        (Terminal(_) | Receipt(_), Unknown) => true,
        (Unknown, Unknown) => true,
        _ => false,
    }
}

/// A small deterministic generator: the same run every time.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

/// One caller: polls, short waits and (now and then) kills of random
/// handles until told to stop, checking each answer against what it saw
/// of that handle before. Returns how many requests it made.
async fn caller(
    registry: Registry,
    ids: Vec<HandleId>,
    seed: u64,
    stop: tokio::sync::watch::Receiver<bool>,
) -> usize {
    let mut dice = Dice(seed);
    let mut history: HashMap<HandleId, Seen> = HashMap::new();
    let mut requests = 0;
    while !*stop.borrow() {
        let id = ids[dice.roll(ids.len() as u64) as usize];
        let (what, answer) = match dice.roll(20) {
            0 => ("kill", registry.kill(id, KillRequest::default()).await),
            1..=4 => (
                "wait",
                tokio::time::timeout(
                    HANG,
                    registry.wait(id, Some(Duration::from_millis(1 + dice.roll(5)))),
                )
                .await
                .unwrap_or_else(|_| panic!("a wait of {id} hung"))
                .map(|outcome| outcome.snapshot),
            ),
            _ => (
                "poll",
                tokio::time::timeout(HANG, registry.poll(id))
                    .await
                    .unwrap_or_else(|_| panic!("a poll of {id} hung")),
            ),
        };
        let next = seen(id, what, answer);
        let before = history.insert(id, next).unwrap_or(Seen::Running);
        assert!(
            may_follow(before, next),
            "{what} of {id}: {next:?} after {before:?}"
        );
        requests += 1;
        // Yield to the other callers on a busy runtime.
        tokio::task::yield_now().await;
    }
    requests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_answers_racing_ends_releases_evictions_and_shutdown_are_the_registrys() {
    // A cap below the children spawned: the later spawns evict finished
    // handles (receipts) and, under `Evict`, running ones.
    let registry = Registry::start(
        RegistryConfig::default()
            .max_handles(150)
            .max_receipts(100)
            .cap_policy(CapPolicy::Evict),
    )
    .await
    .unwrap();
    let mut spawned = Vec::new();
    for n in 0..200u64 {
        // Half end by themselves soon, the others run until killed,
        // released, evicted or stopped.
        let request = if n % 2 == 0 {
            SpawnRequest::shell(format!("sleep 0.{:02}; echo {n}", n % 50))
        } else {
            SpawnRequest::argv(["sleep", "300"])
        };
        spawned.push(registry.spawn(request).await.unwrap());
    }
    let ids: Vec<HandleId> = spawned.iter().map(|s| s.handle_id).collect();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let callers: Vec<_> = (0..8)
        .map(|n| {
            tokio::spawn(caller(
                registry.clone(),
                ids.clone(),
                0x9e37_79b9 + n,
                stop.clone(),
            ))
        })
        .collect();

    // Meanwhile: releases, kills and a second wave of spawns past the cap.
    let mut dice = Dice(7);
    for round in 0..100 {
        let id = ids[dice.roll(ids.len() as u64) as usize];
        match round % 4 {
            0 => {
                registry.release(id).await.unwrap();
                // Forgotten for good: every caller from now on is told so,
                // whichever way it asks.
                assert_eq!(seen(id, "poll", registry.poll(id).await), Seen::Unknown);
            }
            1 => {
                let _ = registry.release_nowait(id);
                assert_eq!(seen(id, "poll", registry.poll(id).await), Seen::Unknown);
            }
            2 => {
                let end = registry.kill(id, KillRequest::default()).await;
                assert!(!matches!(seen(id, "kill", end), Seen::Running));
            }
            _ => {
                let snap = registry
                    .spawn(SpawnRequest::argv(["sleep", "300"]))
                    .await
                    .unwrap();
                spawned.push(snap);
            }
        }
    }
    // The shutdown with the callers still asking: each of them gets an
    // answer or `RegistryUnavailable`, and stops once told.
    let racing: Vec<_> = (0..4)
        .map(|n| {
            let registry = registry.clone();
            let id = ids[n * 37];
            tokio::spawn(async move {
                for _ in 0..200 {
                    match tokio::time::timeout(HANG, registry.poll(id)).await {
                        Err(_) => panic!("a poll racing the shutdown hung"),
                        Ok(Err(Error::RegistryUnavailable { .. })) => return,
                        Ok(answer) => {
                            seen(id, "poll", answer);
                        }
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    stop_tx.send(true).unwrap();
    let requests: usize = join_all(callers)
        .await
        .into_iter()
        .map(|done| done.unwrap())
        .sum();
    assert!(requests > 500, "the callers made only {requests} requests");
    registry.shutdown().await.unwrap();
    for done in join_all(racing).await {
        done.unwrap();
    }
    // A stopped registry answers nothing, not even from its index.
    assert!(matches!(
        registry.poll(ids[0]).await,
        Err(Error::RegistryUnavailable { .. })
    ));
    for snap in &spawned {
        crate::support::wait_group_gone(snap.pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_seen_through_the_direct_route_counts_for_the_eviction_order() {
    let registry = Registry::start(
        RegistryConfig::default()
            .max_handles(2)
            .cap_policy(CapPolicy::Refuse),
    )
    .await
    .unwrap();
    let mut snaps = Vec::new();
    for _ in 0..2 {
        let (snap, mut feed) = registry
            .spawn_subscribed(SpawnRequest::argv(["true"]))
            .await
            .unwrap();
        // Ended, without anybody being given the status.
        while feed.recv().await.is_some() {}
        snaps.push(snap);
    }
    // The registry has stored both ends once `list` says so: the next
    // poll is answered from its index, with no message to it.
    crate::support::eventually("both ends stored", || async {
        registry
            .list()
            .await
            .unwrap()
            .iter()
            .all(|s| s.status.is_terminal())
    })
    .await;
    let polled = registry.poll(snaps[1].handle_id).await.unwrap();
    assert_eq!(polled.status, Status::Exited);
    // The newer one was seen: it goes first, not the oldest unseen one.
    let next = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
    assert!(!registry.poll(snaps[0].handle_id).await.unwrap().evicted);
    assert!(registry.poll(snaps[1].handle_id).await.unwrap().evicted);
    registry.shutdown().await.unwrap();
    for snap in snaps.iter().chain([&next]) {
        crate::support::wait_group_gone(snap.pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_does_not_wait_for_the_registrys_queue() {
    let registry = Registry::start(RegistryConfig::default().max_handles(300))
        .await
        .unwrap();
    // 200 finished handles make each `List` below cost the registry the
    // building of 200 summaries.
    let spawned: Vec<Snapshot> = join_all((0..200).map(|_| async {
        let snap = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
        registry.wait(snap.handle_id, None).await.unwrap();
        snap
    }))
    .await;
    let id = spawned[0].handle_id;
    // A handle wrapping the actor (as under a supervisor of one's own)
    // reads the index too, once the registry has handed it over: before
    // the `counts` below.
    let wrapped = Registry::from_actor(registry.actor().clone());
    let running = registry
        .spawn(SpawnRequest::argv(["sleep", "300"]))
        .await
        .unwrap();
    // Handled after every `Finished`: each was sent before its wait's answer.
    registry.counts().await.unwrap();

    // Seconds of work queued in the registry's mailbox; only the last
    // answer is kept (the others are built and dropped).
    let mut last = None;
    for _ in 0..20_000 {
        let (tx, rx) = ractor::concurrency::oneshot();
        registry
            .actor()
            .cast(RegistryMsg::List(ListFilter::default(), tx.into()))
            .unwrap();
        last = Some(rx);
    }
    let mut last = last.unwrap();
    let polled = registry.poll(id).await.unwrap();
    assert_eq!(polled.status, Status::Exited);
    assert!(
        last.try_recv().is_err(),
        "the poll of a finished handle waited behind the registry's queue"
    );
    assert_eq!(wrapped.poll(id).await.unwrap(), polled);
    // A running handle is asked at its process actor.
    let now = registry.poll(running.handle_id).await.unwrap();
    assert_eq!(now.status, Status::Running);
    assert!(
        last.try_recv().is_err(),
        "the poll of a running handle waited behind the registry's queue"
    );
    wrapped.poll(running.handle_id).await.unwrap();
    assert!(
        last.try_recv().is_err(),
        "a wrapped handle's poll waited behind the registry's queue"
    );
    // The same poll sent to the registry is answered after the queue.
    let through_mailbox = ractor::call!(registry.actor(), RegistryMsg::Poll, id)
        .unwrap()
        .unwrap();
    assert_eq!(through_mailbox, polled);
    assert!(last.try_recv().is_ok(), "the mailbox kept its order");
    registry.shutdown().await.unwrap();
    for snap in spawned.iter().chain([&running]) {
        crate::support::wait_group_gone(snap.pid).await;
    }
}

/// `poll_shared` answers what `poll` answers: a running handle's fresh
/// snapshot, a finished handle's terminal one (the same shared value on
/// every call, no copy), and the same errors for a released handle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_shared_answers_as_poll_does() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let running = registry
        .spawn(SpawnRequest::argv(["sleep", "30"]))
        .await
        .unwrap();
    let shared = registry.poll_shared(running.handle_id).await.unwrap();
    assert!(shared.running(), "{shared:?}");
    assert_eq!(shared.handle_id, running.handle_id);

    let quick = registry
        .spawn(SpawnRequest::shell("echo shared; exit 3"))
        .await
        .unwrap();
    let done = registry.wait(quick.handle_id, None).await.unwrap().snapshot;
    // The registry stores the terminal snapshot in its index when its
    // report of the end arrives, which may come just after the wait was
    // answered; from then on every call shares that one value.
    let start = std::time::Instant::now();
    let first = loop {
        let first = registry.poll_shared(quick.handle_id).await.unwrap();
        let again = registry.poll_shared(quick.handle_id).await.unwrap();
        assert_eq!(*first, done);
        if std::sync::Arc::ptr_eq(&first, &again) {
            break first;
        }
        assert!(
            start.elapsed() < HANG,
            "a finished handle's snapshot is still copied after {HANG:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    assert_eq!(first.exit_code, Some(3));
    assert_eq!(first.stdout.text(), "shared\n");
    assert_eq!(registry.poll(quick.handle_id).await.unwrap(), *first);

    registry.release(quick.handle_id).await.unwrap();
    let polled = registry.poll(quick.handle_id).await.map(|s| s.status);
    let shared = registry
        .poll_shared(quick.handle_id)
        .await
        .map(|s| s.status);
    assert_eq!(format!("{polled:?}"), format!("{shared:?}"));
    assert!(shared.is_err(), "a released handle answered {shared:?}");

    registry
        .kill(running.handle_id, KillRequest::default())
        .await
        .unwrap();
    registry.shutdown().await.unwrap();
}
