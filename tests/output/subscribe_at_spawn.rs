//! Subscriptions made with the spawn get every byte from offset 0, then
//! exactly one exit event, and have it before any waiter is answered; tags
//! come back in every event; a later subscription can replay from an
//! offset. Also the small embedding helpers: `Snapshot::elapsed`,
//! `kill_nowait`, `release_nowait`.

// This file reads the relay's channel itself.
#[allow(dead_code)]
use crate::support;
use crate::support::relay;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::support::output::{registry, seq_output};
use procward::time::OffsetDateTime;
use procward::{
    CapPolicy, Clock, Error, KillRequest, Offsets, OutputEvent, OutputStream, Registry,
    RegistryConfig, Snapshot, SpawnRequest, Status, Stdin, SubscribeRequest, Subscriber,
};
use ractor::Actor;
use tokio::sync::mpsc;

/// What one subscription received: bytes per stream (checked contiguous),
/// bytes reported missed, and the exit events.
#[derive(Debug, Default)]
struct Received {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    missed: u64,
    exits: Vec<Snapshot>,
    first_offsets: Vec<u64>,
}

impl Received {
    fn take(&mut self, event: OutputEvent) {
        assert!(self.exits.is_empty(), "an event after the exit: {event:?}");
        match event {
            OutputEvent::Chunk {
                stream,
                offset,
                bytes,
                ..
            } => {
                let buf = match stream {
                    OutputStream::Stdout => &mut self.stdout,
                    OutputStream::Stderr => &mut self.stderr,
                };
                if buf.is_empty() {
                    self.first_offsets.push(offset);
                }
                assert_eq!(offset, buf.len() as u64 + self.missed, "a gap or overlap");
                buf.extend_from_slice(&bytes);
            }
            OutputEvent::Missed { bytes, .. } => self.missed += bytes,
            OutputEvent::Exit { snapshot, .. } => self.exits.push(snapshot),
        }
    }
}

/// Everything on `rx` until it closes, by tag.
async fn drain_by_tag(mut rx: mpsc::UnboundedReceiver<OutputEvent>) -> BTreeMap<u64, Received> {
    let mut by_tag: BTreeMap<u64, Received> = BTreeMap::new();
    while let Some(event) = tokio::time::timeout(support::DEADLINE, rx.recv())
        .await
        .expect("events stopped coming before every exit")
    {
        by_tag.entry(event.tag()).or_default().take(event);
    }
    by_tag
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_child_subscribed_at_spawn_loses_nothing() {
    let registry = registry().await;
    // No gate: the child writes at once and ends at once, the case that
    // lost everything with a subscription made after the spawn.
    let (snap, mut feed) = registry
        .spawn_subscribed(SpawnRequest::shell("seq 1 20000; echo err >&2"))
        .await
        .unwrap();
    assert_eq!(feed.subscribed.stdout_offset, 0);
    let mut got = Received::default();
    while let Some(event) = feed.recv().await {
        assert_eq!(event.handle_id(), snap.handle_id);
        got.take(event);
    }
    assert_eq!(got.exits.len(), 1, "exactly one exit event");
    assert_eq!(got.first_offsets, vec![0, 0], "both streams from offset 0");
    assert_eq!(got.missed, 0);
    assert_eq!(got.stdout, seq_output(20000));
    assert_eq!(got.stderr, b"err\n");
    assert_eq!(got.exits[0].stdout.bytes, got.stdout);
    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_tell_two_hundred_quick_jobs_apart_on_one_channel() {
    let registry = Registry::start(RegistryConfig::default().max_handles(256))
        .await
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let spawns = (0..200u64).map(|job| {
        let request = SpawnRequest::shell(format!("echo job-{job}; echo e{job} >&2"))
            .subscribe(SubscribeRequest::new(Subscriber::Channel(tx.clone())).tag(job));
        let registry = registry.clone();
        async move { registry.spawn(request).await.unwrap() }
    });
    let snaps = futures::future::join_all(spawns).await;
    drop(tx);
    let by_tag = drain_by_tag(rx).await;
    assert_eq!(by_tag.len(), 200);
    for (job, snap) in snaps.iter().enumerate() {
        let got = &by_tag[&(job as u64)];
        assert_eq!(got.stdout, format!("job-{job}\n").as_bytes(), "job {job}");
        assert_eq!(got.stderr, format!("e{job}\n").as_bytes(), "job {job}");
        assert_eq!(got.exits.len(), 1);
        assert_eq!(got.exits[0].handle_id, snap.handle_id);
    }
    registry.shutdown().await.unwrap();
    for snap in &snaps {
        support::wait_group_gone(snap.pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_subscribed_at_spawn_gets_every_byte_with_its_tag() {
    let registry = registry().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (relay, relay_task) = Actor::spawn(None, relay::Relay, tx).await.unwrap();
    let request = SpawnRequest::shell("seq 1 5000")
        .subscribe(SubscribeRequest::new(Subscriber::Actor(relay.get_derived())).tag(7));
    let snap = registry.spawn(request).await.unwrap();
    let mut got = Received::default();
    loop {
        let event = tokio::time::timeout(support::DEADLINE, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.tag(), 7);
        let exit = matches!(event, OutputEvent::Exit { .. });
        got.take(event);
        if exit {
            break;
        }
    }
    assert_eq!(got.stdout, seq_output(5000));
    relay.stop(None);
    relay_task.await.unwrap();
    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_have_every_chunk_and_the_exit_before_a_waiter_is_answered() {
    let registry = registry().await;
    for round in 0..50 {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let snap = registry
            .spawn(
                SpawnRequest::shell("read go; seq 1 3000")
                    .stdin(Stdin::Pipe)
                    .subscribe(Subscriber::Channel(tx)),
            )
            .await
            .unwrap();
        let wait = support::pending_wait(&registry, snap.handle_id).await;
        registry.write(snap.handle_id, "go\n").await.unwrap();
        let done = wait.await.unwrap().unwrap().snapshot;
        // Without awaiting: everything must already be in the channel.
        let mut got = Received::default();
        while let Ok(event) = rx.try_recv() {
            got.take(event);
        }
        assert_eq!(got.exits.len(), 1, "round {round}: no exit event yet");
        assert_eq!(got.stdout, seq_output(3000), "round {round}");
        assert_eq!(got.exits[0], done);
        support::wait_group_gone(snap.pid).await;
    }
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_subscriber_has_its_exit_queued_before_a_waiter_is_answered() {
    let registry = registry().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (relay, relay_task) = Actor::spawn(None, relay::Relay, tx).await.unwrap();
    for round in 0..20u64 {
        let snap = registry
            .spawn(
                SpawnRequest::shell("read go; seq 1 2000")
                    .stdin(Stdin::Pipe)
                    .subscribe(
                        SubscribeRequest::new(Subscriber::Actor(relay.get_derived())).tag(round),
                    ),
            )
            .await
            .unwrap();
        let wait = support::pending_wait(&registry, snap.handle_id).await;
        registry.write(snap.handle_id, "go\n").await.unwrap();
        wait.await.unwrap().unwrap();
        // A message the waiter sends the sink now is handled after the
        // exit event: the sink's mailbox already holds everything.
        relay
            .cast(OutputEvent::Missed {
                tag: u64::MAX,
                handle_id: snap.handle_id,
                stream: OutputStream::Stdout,
                bytes: 0,
            })
            .unwrap();
        let mut got = Received::default();
        loop {
            let event = tokio::time::timeout(support::DEADLINE, rx.recv())
                .await
                .unwrap()
                .unwrap();
            if event.tag() == u64::MAX {
                break;
            }
            got.take(event);
        }
        assert_eq!(
            got.exits.len(),
            1,
            "round {round}: the marker overtook the exit"
        );
        assert_eq!(got.stdout, seq_output(2000));
        support::wait_group_gone(snap.pid).await;
    }
    relay.stop(None);
    relay_task.await.unwrap();
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_replays_from_an_offset_then_follows_live() {
    let registry = registry().await;
    let snap = registry
        .spawn(SpawnRequest::shell("echo first; read go; echo second").stdin(Stdin::Pipe))
        .await
        .unwrap();
    support::wait_for_stdout(&registry, snap.handle_id, "first").await;
    let mut feed = registry
        .subscribe_from(snap.handle_id, Offsets::START)
        .await
        .unwrap();
    assert_eq!(feed.subscribed.stdout_offset, 0);
    // From offset 2 on: the replay starts mid-chunk.
    let mut partial = registry
        .subscribe_from(
            snap.handle_id,
            Offsets {
                stdout: 2,
                stderr: 0,
            },
        )
        .await
        .unwrap();
    registry.write(snap.handle_id, "go\n").await.unwrap();
    let mut got = Received::default();
    while let Some(event) = feed.recv().await {
        got.take(event);
    }
    assert_eq!(got.stdout, b"first\nsecond\n");
    assert_eq!(got.exits.len(), 1);
    let mut tail = Vec::new();
    let mut offsets = Vec::new();
    while let Some(event) = partial.recv().await {
        if let OutputEvent::Chunk { offset, bytes, .. } = event {
            offsets.push(offset);
            tail.extend_from_slice(&bytes);
        }
    }
    assert_eq!(offsets[0], 2);
    assert_eq!(tail, b"rst\nsecond\n");
    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_finished_handle_sends_its_output_then_the_exit() {
    let registry = registry().await;
    // 4000 bytes with a cap of 1000: head 500, 3000 dropped, tail 500.
    let snap = registry
        .spawn(SpawnRequest::shell("head -c 4000 /dev/zero | tr '\\0' x").output_cap(1000))
        .await
        .unwrap();
    registry.wait(snap.handle_id, None).await.unwrap();
    let mut feed = registry
        .subscribe_from(snap.handle_id, Offsets::START)
        .await
        .unwrap();
    let mut got = Received::default();
    while let Some(event) = feed.recv().await {
        got.take(event);
    }
    assert_eq!(got.stdout.len(), 1000);
    assert_eq!(got.missed, 3000, "the dropped middle is reported missed");
    assert_eq!(got.exits.len(), 1);

    let past = registry
        .subscribe_from(
            snap.handle_id,
            Offsets {
                stdout: 4001,
                stderr: 0,
            },
        )
        .await;
    assert!(
        matches!(
            past,
            Err(Error::OffsetOutOfRange {
                offset: 4001,
                total: 4000,
                ..
            })
        ),
        "{past:?}"
    );
    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elapsed_is_the_run_time_of_terminal_snapshots_and_receipts() {
    // Each reading of the clock is one second after the last.
    let tick = Arc::new(AtomicI64::new(0));
    let clock = Clock::from_fn(move || {
        OffsetDateTime::UNIX_EPOCH + Duration::from_secs(tick.fetch_add(1, Ordering::SeqCst) as u64)
    });
    let registry = Registry::start(RegistryConfig::default().clock(clock).max_handles(1))
        .await
        .unwrap();
    let snap = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
    assert_eq!(snap.elapsed(), None, "running");
    let done = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
    let ran = done.ended_at.unwrap() - done.started_at;
    assert!(ran.is_positive());
    assert_eq!(done.elapsed(), Some(ran.try_into().unwrap()));
    // Evicted by the next spawn: the receipt keeps the times.
    let next = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
    let receipt = registry.poll(snap.handle_id).await.unwrap();
    assert!(receipt.evicted);
    assert_eq!(receipt.elapsed(), done.elapsed());
    registry.shutdown().await.unwrap();
    for s in [&snap, &next] {
        support::wait_group_gone(s.pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_release_can_be_sent_without_waiting() {
    let registry = Registry::start(RegistryConfig::default().cap_policy(CapPolicy::Refuse))
        .await
        .unwrap();
    let killed = registry
        .spawn(SpawnRequest::shell("sleep 300 & sleep 300"))
        .await
        .unwrap();
    registry
        .kill_nowait(killed.handle_id, KillRequest::default())
        .unwrap();
    let end = registry
        .wait(killed.handle_id, None)
        .await
        .unwrap()
        .snapshot;
    assert_eq!(end.status, Status::Killed);
    support::wait_group_gone(killed.pid).await;

    let released = registry
        .spawn(SpawnRequest::shell("sleep 300 & sleep 300"))
        .await
        .unwrap();
    registry.release_nowait(released.handle_id).unwrap();
    // Handled before anything sent after it: the handle is gone at once.
    assert!(matches!(
        registry.poll(released.handle_id).await,
        Err(Error::UnknownHandle(_))
    ));
    support::wait_group_gone(released.pid).await;

    registry.shutdown().await.unwrap();
    assert!(matches!(
        registry.kill_nowait(killed.handle_id, KillRequest::default()),
        Err(Error::RegistryUnavailable { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_goes_through_the_window_and_reports_the_rest_missed() {
    let registry = registry().await;
    let total: u64 = 2 * 1024 * 1024;
    let snap = registry
        .spawn(SpawnRequest::shell(format!("head -c {total} /dev/zero")))
        .await
        .unwrap();
    registry.wait(snap.handle_id, None).await.unwrap();
    // Nothing is read until the exit is in: every chunk is held.
    let mut feed = registry
        .subscribe_from(snap.handle_id, Offsets::START)
        .await
        .unwrap();
    let mut held = Vec::new();
    let (mut delivered, mut missed) = (0, 0);
    while let Some(event) = feed.recv().await {
        match &event {
            OutputEvent::Chunk { bytes, .. } => delivered += bytes.len() as u64,
            OutputEvent::Missed { bytes, .. } => missed += bytes,
            OutputEvent::Exit { .. } => {}
        }
        held.push(event);
    }
    let chunks = held
        .iter()
        .filter(|e| matches!(e, OutputEvent::Chunk { .. }))
        .count();
    assert_eq!(chunks, 16, "the window, no more");
    assert!(held.iter().all(|e| match e {
        OutputEvent::Chunk { bytes, .. } => bytes.len() <= 64 * 1024,
        _ => true,
    }));
    assert_eq!(delivered + missed, total, "every byte delivered or counted");
    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_a_receipt_reports_its_bytes_missed_then_exits() {
    let registry = Registry::start(RegistryConfig::default().max_handles(1))
        .await
        .unwrap();
    let snap = registry
        .spawn(SpawnRequest::argv(["echo", "gone"]))
        .await
        .unwrap();
    registry.wait(snap.handle_id, None).await.unwrap();
    let next = registry.spawn(SpawnRequest::argv(["true"])).await.unwrap();
    let mut feed = registry
        .subscribe_from(snap.handle_id, Offsets::START)
        .await
        .unwrap();
    let mut got = Received::default();
    while let Some(event) = feed.recv().await {
        got.take(event);
    }
    assert!(got.stdout.is_empty());
    assert_eq!(got.missed, 5, "`gone\\n`, no longer kept");
    assert_eq!(got.exits.len(), 1);
    assert!(got.exits[0].evicted);
    registry.shutdown().await.unwrap();
    for s in [&snap, &next] {
        support::wait_group_gone(s.pid).await;
    }
}

/// An actor whose message does not convert back to the event: ractor's
/// `get_derived` panics when a send to it fails.
struct NoWayBack;

enum OneWay {
    Output(#[allow(dead_code)] OutputEvent),
}

#[cfg(feature = "cluster")]
impl ractor::Message for OneWay {}

impl From<OutputEvent> for OneWay {
    fn from(event: OutputEvent) -> Self {
        OneWay::Output(event)
    }
}

impl TryFrom<OneWay> for OutputEvent {
    type Error = OneWay;

    fn try_from(msg: OneWay) -> Result<Self, OneWay> {
        Err(msg)
    }
}

impl Actor for NoWayBack {
    type Msg = OneWay;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ractor::ActorRef<OneWay>,
        _args: (),
    ) -> Result<(), ractor::ActorProcessingErr> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_actor_subscriber_is_dropped_without_a_panic() {
    let registry = registry().await;
    let (actor, task) = Actor::spawn(None, NoWayBack, ()).await.unwrap();
    let snap = registry
        .spawn(
            SpawnRequest::shell("read go; seq 1 1000")
                .stdin(Stdin::Pipe)
                .subscribe(Subscriber::Actor(actor.get_derived())),
        )
        .await
        .unwrap();
    actor.stop(None);
    task.await.unwrap();
    // Output and the exit now go to a stopped actor: sent, ractor would
    // panic in the process actor and the handle would end `killed` with a
    // failure.
    registry.write(snap.handle_id, "go\n").await.unwrap();
    let done = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
    assert_eq!(done.status, Status::Exited, "{done:?}");
    assert_eq!(done.failure, None);
    assert_eq!(done.stdout.bytes, seq_output(1000));
    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}
