//! Subscriptions: ordered chunks per stream and exactly one exit event;
//! a subscriber that falls behind misses chunks (and is told how many
//! bytes) but never stalls the child; late subscribers get the exit event.

use procward::{OutputEvent, OutputStream, SpawnRequest, Status, Stdin, Subscriber};
use ractor::Actor;
use tokio::sync::mpsc;

use crate::support::output::{registry, seq_output};
use crate::support::relay;
use crate::support::relay::Relay;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_arrive_in_order_then_one_exit() {
    let registry = registry().await;
    // The child waits for a line on stdin, so the subscription is in place
    // before it writes anything.
    let spawned = registry
        .spawn(SpawnRequest::shell("read go; seq 1 20000; echo err >&2").stdin(Stdin::Pipe))
        .await
        .unwrap();
    let mut feed = registry.subscribe(spawned.handle_id).await.unwrap();
    assert_eq!(feed.subscribed.stdout_offset, 0);
    registry.write(spawned.handle_id, "go\n").await.unwrap();

    // Per stream: the chunks received, by offset, and the next offset due
    // (received or reported missed).
    let mut chunks: [Vec<(u64, bytes::Bytes)>; 2] = [Vec::new(), Vec::new()];
    let mut next = [0u64; 2];
    let mut exits = Vec::new();
    // Receive and drop each event at once. On a loaded machine this task
    // may still fall 16 chunks behind: then the chunks are reported missed
    // (never queued), and every byte must still be accounted for.
    while let Some(event) = feed.recv().await {
        assert!(exits.is_empty(), "an event came after the exit event");
        match event {
            OutputEvent::Chunk {
                handle_id,
                stream,
                offset,
                bytes,
                ..
            } => {
                assert_eq!(handle_id, spawned.handle_id);
                let i = stream as usize;
                assert_eq!(offset, next[i], "chunks out of order or missing");
                next[i] += bytes.len() as u64;
                chunks[i].push((offset, bytes));
            }
            OutputEvent::Missed { stream, bytes, .. } => next[stream as usize] += bytes,
            OutputEvent::Exit { snapshot, .. } => exits.push(snapshot),
        }
    }
    assert_eq!(exits.len(), 1);
    assert_eq!(exits[0].status, Status::Exited);
    let expected = [seq_output(20000), b"err\n".to_vec()];
    let kept = [&exits[0].stdout.bytes, &exits[0].stderr.bytes];
    for i in 0..2 {
        assert_eq!(next[i], expected[i].len() as u64, "bytes unaccounted for");
        assert_eq!(&kept[i][..], &expected[i][..]);
        for (offset, bytes) in &chunks[i] {
            let at = *offset as usize;
            assert_eq!(&bytes[..], &expected[i][at..at + bytes.len()]);
        }
    }
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_misses_chunks_but_does_not_stall_the_child() {
    let registry = registry().await;
    let total: u64 = 8 * 1024 * 1024;
    let spawned = registry
        .spawn(
            SpawnRequest::shell(format!("read go; head -c {total} /dev/zero")).stdin(Stdin::Pipe),
        )
        .await
        .unwrap();
    let mut feed = registry.subscribe(spawned.handle_id).await.unwrap();
    registry.write(spawned.handle_id, "go\n").await.unwrap();
    // The subscriber reads nothing until the child is done: if it could
    // stall the child, this wait would never return.
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .unwrap()
        .snapshot;
    assert_eq!(done.stdout.total_bytes, total);

    let mut delivered = 0u64;
    let mut missed = 0u64;
    let mut chunks = 0usize;
    let mut held = Vec::new();
    let mut exits = 0;
    while let Some(event) = feed.recv().await {
        match event {
            OutputEvent::Chunk { ref bytes, .. } => {
                delivered += bytes.len() as u64;
                chunks += 1;
                held.push(event);
            }
            OutputEvent::Missed { stream, bytes, .. } => {
                assert_eq!(stream, OutputStream::Stdout);
                missed += bytes;
            }
            OutputEvent::Exit { .. } => exits += 1,
        }
    }
    assert_eq!(exits, 1);
    assert!(chunks <= 16, "{chunks} chunks held: more than the window");
    assert!(missed > 0);
    assert_eq!(
        delivered + missed,
        total,
        "every byte is delivered or counted"
    );
    drop(held);
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_after_the_end_still_gets_the_exit_event() {
    let registry = registry().await;
    let spawned = registry
        .spawn(SpawnRequest::argv(["echo", "done"]))
        .await
        .unwrap();
    registry.wait(spawned.handle_id, None).await.unwrap();
    let mut feed = registry.subscribe(spawned.handle_id).await.unwrap();
    assert_eq!(feed.subscribed.stdout_offset, 5);
    match feed.recv().await {
        Some(OutputEvent::Exit { snapshot, .. }) => {
            assert_eq!(&snapshot.stdout.bytes[..], b"done\n")
        }
        other => panic!("expected the exit event, got {other:?}"),
    }
    assert!(feed.recv().await.is_none());
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_can_subscribe() {
    let registry = registry().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (relay, relay_task) = Actor::spawn(None, Relay, tx).await.unwrap();
    let spawned = registry
        .spawn(SpawnRequest::shell("read go; echo via-actor").stdin(Stdin::Pipe))
        .await
        .unwrap();
    registry
        .subscribe_with(spawned.handle_id, Subscriber::Actor(relay.get_derived()))
        .await
        .unwrap();
    registry.write(spawned.handle_id, "go\n").await.unwrap();
    let (out, exit) = relay::bytes_until_exit(&mut rx).await;
    assert_eq!(exit.status, Status::Exited);
    assert_eq!(out, b"via-actor\n");
    relay.stop(None);
    relay_task.await.unwrap();
    registry.shutdown().await.unwrap();
}
