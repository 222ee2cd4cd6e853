//! stdin: bytes given at spawn, streamed writes then close, and typed
//! errors for writes that cannot happen.

use procward::{Error, SpawnRequest, Status, Stdin};

use crate::support::output::registry;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_given_at_spawn_round_trip_through_cat() {
    let registry = registry().await;
    let input: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let spawned = registry
        .spawn(SpawnRequest::argv(["cat"]).stdin(Stdin::Bytes(input.clone().into())))
        .await
        .unwrap();
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .unwrap()
        .snapshot;
    assert_eq!(done.status, Status::Exited);
    assert_eq!(done.exit_code, Some(0));
    assert_eq!(&done.stdout.bytes[..], &input[..]);
    // Stdin given as bytes is closed once written.
    let err = registry.write(spawned.handle_id, "more").await.unwrap_err();
    assert!(matches!(err, Error::StdinClosed(id) if id == spawned.handle_id));
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_writes_then_close_end_cat_cleanly() {
    let registry = registry().await;
    let spawned = registry
        .spawn(SpawnRequest::argv(["cat"]).stdin(Stdin::Pipe))
        .await
        .unwrap();
    let mut expected = Vec::new();
    for i in 0..50 {
        let line = format!("line {i} {}\n", "x".repeat(i * 100));
        expected.extend_from_slice(line.as_bytes());
        registry.write(spawned.handle_id, line).await.unwrap();
    }
    registry.close_stdin(spawned.handle_id).await.unwrap();
    // Closing again is a no-op.
    registry.close_stdin(spawned.handle_id).await.unwrap();
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .unwrap()
        .snapshot;
    assert_eq!(done.exit_code, Some(0));
    assert_eq!(&done.stdout.bytes[..], &expected[..]);
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_after_exit_is_a_typed_error() {
    let registry = registry().await;
    let spawned = registry
        .spawn(SpawnRequest::argv(["true"]).stdin(Stdin::Pipe))
        .await
        .unwrap();
    registry.wait(spawned.handle_id, None).await.unwrap();
    let err = registry.write(spawned.handle_id, "late").await.unwrap_err();
    assert!(matches!(err, Error::StdinClosed(id) if id == spawned.handle_id));
    registry.close_stdin(spawned.handle_id).await.unwrap();
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_to_a_child_that_closed_stdin_is_a_typed_error() {
    let registry = registry().await;
    // The child closes its stdin, says so, and stays alive until killed.
    let spawned = registry
        .spawn(SpawnRequest::shell("exec 0<&-; echo closed; exec sleep 30").stdin(Stdin::Pipe))
        .await
        .unwrap();
    let mut feed = registry.subscribe(spawned.handle_id).await.unwrap();
    if feed.subscribed.stdout_offset == 0 {
        // Not printed yet: its first chunk says stdin is closed.
        let _ = feed.recv().await;
    }
    // Another test's child, spawned while this pipe was being made, holds
    // a copy of its read end until that child's exec (docs/output.md): a
    // write in that window succeeds. There is no event to await for
    // another process's exec, so the write is retried; the first failure
    // must be the typed one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let err = loop {
        match registry.write(spawned.handle_id, "x").await {
            Err(err) => break err,
            Ok(()) => {
                assert!(std::time::Instant::now() < deadline, "writes never failed");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    };
    assert!(matches!(err, Error::StdinClosed(_)), "{err:?}");
    registry
        .kill(spawned.handle_id, Default::default())
        .await
        .unwrap();
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_without_a_pipe_is_a_typed_error() {
    let registry = registry().await;
    let spawned = registry
        .spawn(SpawnRequest::argv(["sleep", "30"]))
        .await
        .unwrap();
    let err = registry.write(spawned.handle_id, "x").await.unwrap_err();
    assert!(matches!(err, Error::StdinNotPiped(_)), "{err:?}");
    let err = registry.close_stdin(spawned.handle_id).await.unwrap_err();
    assert!(matches!(err, Error::StdinNotPiped(_)), "{err:?}");
    registry
        .kill(spawned.handle_id, Default::default())
        .await
        .unwrap();
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_closes_queued_when_the_process_ends_all_get_answers() {
    let registry = registry().await;
    // `sleep` never reads: a 1 MiB write waits for room in the pipe, and
    // the commands behind it wait in the writer's queue. Whether some are
    // still queued when the process ends is a race, so it runs a few
    // rounds.
    for _round in 0..5 {
        queue_then_kill(&registry).await;
    }
    registry.shutdown().await.unwrap();
}

async fn queue_then_kill(registry: &procward::Registry) {
    let spawned = registry
        .spawn(SpawnRequest::argv(["sleep", "30"]).stdin(Stdin::Pipe))
        .await
        .expect("spawn sleep");
    let id = spawned.handle_id;
    let mut pending = Vec::new();
    for i in 0..8 {
        let registry = registry.clone();
        pending.push(tokio::spawn(async move {
            if i % 4 == 3 {
                registry.close_stdin(id).await
            } else {
                registry.write(id, vec![b'x'; 1 << 20]).await
            }
        }));
    }
    registry
        .kill(id, Default::default())
        .await
        .expect("kill sleep");
    for answer in pending {
        match answer.await.expect("the command task") {
            Ok(()) | Err(Error::StdinClosed(_)) => {}
            Err(other) => panic!("a queued stdin command got {other:?}"),
        }
    }
    registry.release(id).await.expect("release sleep");
}
