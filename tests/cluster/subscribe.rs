//! Subscriptions across nodes: live chunks in order, exactly one exit, the
//! same 16-chunk window as locally (acknowledged by the pull), cancel
//! safety, and feeds that end with their subscriber.

use std::time::Duration;

use procward::cluster::{ClusterClient, Placement, RemoteErrorKind, RemoteSnapshot};
use procward::{OutputEvent, OutputStream, SpawnRequest, Status, Stdin, Subscriber};
use tokio::sync::mpsc;

use crate::nodes;
use crate::nodes::{Node, Scratch, client_for};
use crate::support::relay;

/// The subscriber window, as locally.
const WINDOW: usize = 16;

async fn on_alpha(client: &ClusterClient, request: SpawnRequest) -> RemoteSnapshot {
    client
        .spawn(request, Placement::Node("alpha".into()))
        .await
        .expect("spawn on alpha")
}

/// A node `alpha` (a real OS process) and a client connected to it; the
/// scratch directory holds the cookie and must outlive the node.
async fn alpha(tag: &str) -> (Scratch, Node, ClusterClient) {
    let scratch = Scratch::new(tag);
    let cookie = scratch.cookie("cookie", "sub-cookie", 0o600);
    let node = Node::start("alpha", &cookie);
    let client = client_for("sub-cookie", &[&node]).await;
    (scratch, node, client)
}

/// A child on alpha that writes 32 MiB once told to (after the test has
/// subscribed), as fast as it can.
async fn gated_flood(client: &ClusterClient) -> RemoteSnapshot {
    on_alpha(
        client,
        SpawnRequest::shell("read go; head -c 33554432 /dev/zero").stdin(Stdin::Pipe),
    )
    .await
}

/// Polls the node's live feed count until it is `want` (feeds end on
/// their own, a moment after their subscriber leaves).
async fn feeds_become(client: &ClusterClient, want: usize) {
    let deadline = tokio::time::Instant::now() + nodes::DEADLINE;
    loop {
        let feeds = client.info("alpha").await.expect("info of alpha").feeds;
        if feeds == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node still has {feeds} feeds, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_arrive_in_order_then_exactly_one_exit() {
    let (_scratch, _node, client) = alpha("sub-order").await;

    let cat = on_alpha(&client, SpawnRequest::argv(["cat"]).stdin(Stdin::Pipe)).await;
    let mut sub = client.subscribe(&cat.handle).await.unwrap();
    assert_eq!(sub.subscribed.stdout_offset, 0);

    let mut offset = 0;
    for line in ["one\n", "two\n", "three\n"] {
        client.write(&cat.handle, line).await.unwrap();
        let mut got = Vec::new();
        while got.len() < line.len() {
            match sub.recv().await.unwrap() {
                Some(OutputEvent::Chunk {
                    stream: OutputStream::Stdout,
                    offset: at,
                    bytes,
                    ..
                }) => {
                    assert_eq!(at, offset, "chunks are contiguous");
                    offset += bytes.len() as u64;
                    got.extend_from_slice(&bytes);
                }
                other => panic!("expected a stdout chunk, got {other:?}"),
            }
        }
        assert_eq!(got, line.as_bytes());
    }

    client.close_stdin(&cat.handle).await.unwrap();
    match sub.recv().await.unwrap() {
        Some(OutputEvent::Exit { snapshot, .. }) => {
            assert_eq!(snapshot.status, Status::Exited);
            assert_eq!(snapshot.stdout.text(), "one\ntwo\nthree\n");
        }
        other => panic!("expected the exit, got {other:?}"),
    }
    assert!(sub.recv().await.unwrap().is_none());
    assert!(sub.recv().await.unwrap().is_none());
    drop(sub);
    assert!(client.release(&cat.handle).await.unwrap());
    feeds_become(&client, 0).await;
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_pulling_holds_one_window_and_misses_the_rest() {
    let (_scratch, _node, client) = alpha("sub-window").await;

    let flood = gated_flood(&client).await;
    let mut sub = client.subscribe(&flood.handle).await.unwrap();
    client.write(&flood.handle, "go\n").await.unwrap();
    // One pull, then none while the child writes everything: the batch it
    // got is not acknowledged, so its chunks still count in the window.
    let first = sub.recv().await.unwrap();
    let done = client.wait(&flood.handle, None).await.unwrap();
    assert_eq!(done.snapshot.status, Status::Exited);
    let total = done.snapshot.stdout.total_bytes;
    assert_eq!(total, 32 << 20);

    let (mut chunks, mut delivered, mut missed, mut exits) = (0, 0, 0, 0);
    let mut next = first;
    while let Some(event) = next {
        match event {
            OutputEvent::Chunk { bytes, .. } => {
                chunks += 1;
                delivered += bytes.len() as u64;
            }
            OutputEvent::Missed { bytes, .. } => missed += bytes,
            OutputEvent::Exit { .. } => exits += 1,
        }
        next = sub.recv().await.unwrap();
    }
    assert_eq!(exits, 1);
    assert!(
        chunks <= WINDOW,
        "{chunks} chunks reached a subscriber that never acknowledged"
    );
    assert!(missed > 0, "32 MiB cannot fit a 16-chunk window");
    assert_eq!(
        sub.subscribed.stdout_offset + delivered + missed,
        total,
        "every byte is delivered or counted as missed"
    );
    drop(sub);
    assert!(client.release(&flood.handle).await.unwrap());
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_recv_loses_nothing() {
    let (_scratch, _node, client) = alpha("sub-cancel").await;

    let cat = on_alpha(&client, SpawnRequest::argv(["cat"]).stdin(Stdin::Pipe)).await;
    let mut sub = client.subscribe(&cat.handle).await.unwrap();
    let mut expected = Vec::new();
    let mut got = Vec::new();
    for round in 0..20u32 {
        // A pull abandoned while it waits (nothing is written yet), and
        // one abandoned just as the bytes go out.
        let idle = tokio::time::timeout(Duration::from_millis(5), sub.recv()).await;
        assert!(idle.is_err(), "nothing was written yet");
        let line = format!("line {round}\n");
        expected.extend_from_slice(line.as_bytes());
        let (_, _) = tokio::join!(
            async { client.write(&cat.handle, line.clone()).await.unwrap() },
            async {
                if let Ok(event) = tokio::time::timeout(Duration::ZERO, sub.recv()).await {
                    if let Some(OutputEvent::Chunk { bytes, .. }) = event.unwrap() {
                        got.extend_from_slice(&bytes);
                    }
                }
            }
        );
        while got.len() < expected.len() {
            let event = tokio::time::timeout(nodes::DEADLINE, sub.recv())
                .await
                .expect("the written bytes arrive");
            match event.unwrap() {
                Some(OutputEvent::Chunk { offset, bytes, .. }) => {
                    assert_eq!(offset, got.len() as u64, "no gap, no repeat");
                    got.extend_from_slice(&bytes);
                }
                other => panic!("expected a chunk, got {other:?}"),
            }
        }
    }
    assert_eq!(got, expected);
    client.close_stdin(&cat.handle).await.unwrap();
    assert!(matches!(
        sub.recv().await.unwrap(),
        Some(OutputEvent::Exit { .. })
    ));
    drop(sub);
    assert!(client.release(&cat.handle).await.unwrap());
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_end_when_dropped_or_when_the_session_closes() {
    let (_scratch, node, watcher) = alpha("sub-end").await;
    let cat = on_alpha(&watcher, SpawnRequest::argv(["cat"]).stdin(Stdin::Pipe)).await;

    let sub = watcher.subscribe(&cat.handle).await.unwrap();
    feeds_become(&watcher, 1).await;
    drop(sub);
    feeds_become(&watcher, 0).await;

    // A second client subscribes, then leaves without dropping anything.
    let other = client_for("sub-cookie", &[&node]).await;
    let held = other.subscribe(&cat.handle).await.unwrap();
    feeds_become(&watcher, 1).await;
    other.shutdown().await.unwrap();
    feeds_become(&watcher, 0).await;
    let after = held.handle.clone();
    drop(held);

    // A released handle cannot be subscribed to.
    watcher.release(&after).await.unwrap();
    let err = watcher.subscribe(&after).await.unwrap_err();
    assert_eq!(err.kind, RemoteErrorKind::UnknownHandle);
    watcher.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dies_fails_a_pending_recv() {
    let (_scratch, mut node, client) = alpha("sub-death").await;

    let sleeper = on_alpha(&client, SpawnRequest::argv(["sleep", "30"])).await;
    let mut sub = client.subscribe(&sleeper.handle).await.unwrap();
    let pending = tokio::spawn(async move { sub.recv().await.map(|event| event.is_some()) });
    node.kill9();
    let failed = tokio::time::timeout(nodes::DEADLINE, pending)
        .await
        .expect("the pending recv must not hang")
        .unwrap()
        .unwrap_err();
    assert_eq!(failed.kind, RemoteErrorKind::NodeUnavailable);
    // The node's guard kills the sleeper's group once the node is gone.
    nodes::eventually("the sleeper to be killed by the guard", || {
        !nodes::alive(sleeper.snapshot.pid)
    });
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_can_subscribe_to_a_remote_process() {
    let (_scratch, _node, client) = alpha("sub-actor").await;

    let (tx, mut rx) = mpsc::unbounded_channel();
    let (relay, relay_task) = ractor::Actor::spawn(None, relay::Relay, tx).await.unwrap();
    let job = on_alpha(
        &client,
        SpawnRequest::shell("read go; echo via-actor").stdin(Stdin::Pipe),
    )
    .await;
    client
        .subscribe_with(&job.handle, Subscriber::Actor(relay.get_derived()))
        .await
        .unwrap();
    client.write(&job.handle, "go\n").await.unwrap();
    let (out, exit) = relay::bytes_until_exit(&mut rx).await;
    assert_eq!(exit.status, Status::Exited);
    assert_eq!(out, b"via-actor\n");
    relay.stop(None);
    relay_task.await.unwrap();
    assert!(client.release(&job.handle).await.unwrap());
    feeds_become(&client, 0).await;
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_subscriber_that_keeps_chunks_closes_the_window() {
    let (_scratch, _node, client) = alpha("sub-forward").await;

    let flood = gated_flood(&client).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let subscribed = client
        .subscribe_with(&flood.handle, Subscriber::Channel(tx))
        .await
        .unwrap();
    client.write(&flood.handle, "go\n").await.unwrap();
    // Nothing is taken from the channel while the child writes everything:
    // the chunks in it keep their credits.
    let done = client.wait(&flood.handle, None).await.unwrap();
    let total = done.snapshot.stdout.total_bytes;

    let (mut chunks, mut delivered, mut missed) = (0, 0, 0);
    loop {
        let event = tokio::time::timeout(nodes::DEADLINE, rx.recv())
            .await
            .expect("the exit event comes");
        match event {
            Some(OutputEvent::Chunk { bytes, .. }) => {
                chunks += 1;
                delivered += bytes.len() as u64;
            }
            Some(OutputEvent::Missed { bytes, .. }) => missed += bytes,
            Some(OutputEvent::Exit { .. }) => break,
            None => panic!("the feed ended without its exit event"),
        }
    }
    assert!(
        chunks <= 2 * WINDOW,
        "{chunks} chunks reached a subscriber that kept every one"
    );
    assert!(missed > 0);
    assert_eq!(subscribed.stdout_offset + delivered + missed, total);
    assert!(rx.recv().await.is_none(), "nothing after the exit event");
    assert!(client.release(&flood.handle).await.unwrap());
    feeds_become(&client, 0).await;
    client.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_forwarded_channel_ends_the_feed() {
    let (_scratch, _node, client) = alpha("sub-drop").await;
    // Silent until killed: only the dropped receiver can end the feed.
    let cat = on_alpha(&client, SpawnRequest::argv(["cat"]).stdin(Stdin::Pipe)).await;
    let (tx, rx) = mpsc::unbounded_channel();
    client
        .subscribe_with(&cat.handle, Subscriber::Channel(tx))
        .await
        .unwrap();
    feeds_become(&client, 1).await;
    drop(rx);
    feeds_become(&client, 0).await;
    assert!(client.release(&cat.handle).await.unwrap());
    client.shutdown().await.unwrap();
}
