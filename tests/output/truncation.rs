//! Capture past the cap keeps exactly the head and the tail, says how much
//! was written, and reads across the dropped middle say so.

use procward::{OutputStream, ReadRequest, Registry, RegistryConfig, SpawnRequest, Status, Stdin};

use crate::support::output::seq_output;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_head_and_tail_of_a_known_pattern() {
    let registry = Registry::start(RegistryConfig::default().reap_orphans(true))
        .await
        .unwrap();
    let expected = seq_output(200_000);
    let cap = 64 * 1024 + 1; // odd, so head and tail differ by one byte
    let spawned = registry
        .spawn(SpawnRequest::argv(["seq", "1", "200000"]).output_cap(cap))
        .await
        .unwrap();
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .unwrap()
        .snapshot;
    assert_eq!(done.status, Status::Exited);
    assert_eq!(done.exit_code, Some(0));

    let out = &done.stdout;
    let head = cap / 2;
    let tail = cap - head;
    assert!(out.truncated);
    assert_eq!(out.total_bytes, expected.len() as u64);
    assert_eq!(out.dropped_at, Some(head));
    assert_eq!(out.bytes.len(), cap);
    assert_eq!(&out.bytes[..head], &expected[..head]);
    assert_eq!(&out.bytes[head..], &expected[expected.len() - tail..]);
    assert!(!done.stderr.truncated);
    assert_eq!(done.stderr.total_bytes, 0);

    // Reading from inside the dropped middle skips to the tail and says so.
    let middle = ReadRequest::new(OutputStream::Stdout).offset(head as u64 + 10);
    let chunk = registry.read(spawned.handle_id, middle).await.unwrap();
    assert!(chunk.dropped);
    assert!(chunk.complete);
    assert_eq!(chunk.offset, (expected.len() - tail) as u64);
    assert_eq!(&chunk.bytes[..], &expected[expected.len() - tail..]);
    assert_eq!(chunk.next_offset, expected.len() as u64);

    registry.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_that_is_not_utf8_is_kept_as_bytes() {
    let registry = Registry::start(RegistryConfig::default().reap_orphans(true))
        .await
        .unwrap();
    let spawned = registry
        .spawn(SpawnRequest::argv(["printf", r"\377\376ok\200"]).stdin(Stdin::Null))
        .await
        .unwrap();
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .unwrap()
        .snapshot;
    assert_eq!(&done.stdout.bytes[..], b"\xff\xfeok\x80");
    let text = done.stdout.text();
    assert!(text.contains("ok"));
    assert_eq!(text.matches('\u{FFFD}').count(), 3);
    registry.shutdown().await.unwrap();
}
