//! Captured output is capped per stream: past the cap, the head and the
//! most recent tail are kept and the snapshot says how much was written.

use procward::{Registry, RegistryConfig, SpawnRequest, Status};

use crate::support;

/// What `seq 1 <n>` prints.
fn seq_output(n: u32) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_past_its_cap_keeps_head_and_tail() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let full = seq_output(20_000);
    let cap = 1000;

    let snap = registry
        .spawn(SpawnRequest::shell("seq 1 20000; seq 1 20000 >&2").output_cap(cap))
        .await
        .unwrap();
    let end = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
    assert_eq!(end.status, Status::Exited);

    let mut expected = full.as_bytes()[..cap / 2].to_vec();
    expected.extend_from_slice(&full.as_bytes()[full.len() - (cap - cap / 2)..]);
    for stream in [&end.stdout, &end.stderr] {
        assert!(stream.truncated);
        assert_eq!(stream.total_bytes, full.len() as u64);
        assert_eq!(stream.bytes.len(), cap);
        assert_eq!(&stream.bytes[..], &expected[..]);
    }

    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_cap_applies_when_the_spawn_sets_none() {
    let registry = Registry::start(RegistryConfig::default().output_cap(10))
        .await
        .unwrap();
    let snap = registry
        .spawn(SpawnRequest::argv(["echo", "0123456789abcdef"]))
        .await
        .unwrap();
    let end = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
    assert!(end.stdout.truncated);
    assert_eq!(end.stdout.total_bytes, 17);
    assert_eq!(end.stdout.text(), "01234cdef\n");

    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_output_under_the_cap_is_kept_whole() {
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let full = seq_output(400_000);

    let snap = registry
        .spawn(SpawnRequest::argv(["seq", "1", "400000"]))
        .await
        .unwrap();
    let end = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
    assert_eq!(end.exit_code, Some(0));
    assert!(!end.stdout.truncated);
    assert_eq!(end.stdout.total_bytes, full.len() as u64);
    assert!(end.stdout.bytes == full.as_bytes(), "stdout differs");

    registry.shutdown().await.unwrap();
    support::wait_group_gone(snap.pid).await;
}
