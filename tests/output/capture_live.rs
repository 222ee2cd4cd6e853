//! Output is visible while the process runs, and incremental reads return
//! every byte exactly once across offsets.

use bytes::Bytes;
use procward::{
    OutputEvent, OutputStream, ReadRequest, Registry, RegistryConfig, SpawnRequest, Status, Stdin,
};

use crate::support::output::seq_output;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_shows_output_while_running() {
    let registry = Registry::start(RegistryConfig::default().reap_orphans(true))
        .await
        .unwrap();
    // The child waits for a line on stdin before each print, so the test
    // subscribes before anything is written and waits for events, not time.
    let spawned = registry
        .spawn(SpawnRequest::shell("read go; echo first; read go; echo second").stdin(Stdin::Pipe))
        .await
        .unwrap();
    let mut feed = registry.subscribe(spawned.handle_id).await.unwrap();
    registry.write(spawned.handle_id, "go\n").await.unwrap();
    let first_chunk_seen = loop {
        match feed.recv().await {
            Some(OutputEvent::Chunk { bytes, .. }) => break bytes,
            Some(OutputEvent::Missed { .. }) => continue,
            other => panic!("expected a chunk, got {other:?}"),
        }
    };
    assert_eq!(&first_chunk_seen[..], b"first\n");

    let running = registry.poll(spawned.handle_id).await.unwrap();
    assert_eq!(running.status, Status::Running);
    assert_eq!(&running.stdout.bytes[..], b"first\n");
    assert_eq!(running.stdout.total_bytes, 6);

    registry.write(spawned.handle_id, "go\n").await.unwrap();
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .unwrap()
        .snapshot;
    assert_eq!(done.status, Status::Exited);
    assert_eq!(&done.stdout.bytes[..], b"first\nsecond\n");
    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_reads_return_every_byte_once() {
    let registry = Registry::start(RegistryConfig::default().reap_orphans(true))
        .await
        .unwrap();
    let expected = seq_output(60_000);
    let spawned = registry
        .spawn(SpawnRequest::argv(["seq", "1", "60000"]))
        .await
        .unwrap();
    // Read while it runs and after it ends, in small steps, until a read
    // says the stream is complete and nothing is left.
    let mut got = Vec::new();
    let mut offset = 0;
    loop {
        let chunk = registry
            .read(
                spawned.handle_id,
                ReadRequest::new(OutputStream::Stdout)
                    .offset(offset)
                    .max_bytes(3000),
            )
            .await
            .unwrap();
        assert!(!chunk.dropped);
        assert_eq!(chunk.offset, offset);
        assert_eq!(chunk.next_offset, offset + chunk.bytes.len() as u64);
        got.extend_from_slice(&chunk.bytes);
        offset = chunk.next_offset;
        if chunk.complete && offset == chunk.total_bytes {
            break;
        }
        if chunk.bytes.is_empty() {
            // Nothing new yet: wait for the process rather than spin.
            let _ = registry.wait(spawned.handle_id, None).await.unwrap();
        }
    }
    assert_eq!(got, expected);

    // Past the end is a typed error naming the numbers.
    let past = ReadRequest::new(OutputStream::Stdout).offset(expected.len() as u64 + 1);
    let err = registry.read(spawned.handle_id, past).await.unwrap_err();
    assert!(
        matches!(err, procward::Error::OffsetOutOfRange { total, .. } if total == expected.len() as u64)
    );

    // stderr is read on its own and is empty here.
    let stderr = registry
        .read(spawned.handle_id, ReadRequest::new(OutputStream::Stderr))
        .await
        .unwrap();
    assert_eq!(stderr.bytes, Bytes::new());
    assert!(stderr.complete);
    registry.shutdown().await.unwrap();
}
