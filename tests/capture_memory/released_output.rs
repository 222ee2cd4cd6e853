//! Releasing a finished handle frees its output: nothing procward keeps
//! (the registry's table, its index, the process actor) holds the bytes
//! once the release has been answered, even after callers read them
//! through the direct route.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use procward::{Registry, RegistryConfig, SpawnRequest};

use crate::{LIVE_LARGE, eventually};

/// Each child prints this much: its kept output is one allocation of at
/// least [`crate::LARGE`] bytes.
const PRINTED: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_handles_hold_no_output() {
    let _turn = crate::SERIAL.lock().await;
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let before = LIVE_LARGE.load(Relaxed);
    let mut ids = Vec::new();
    for _ in 0..8 {
        let spawned = registry
            .spawn(SpawnRequest::argv([
                "head",
                "-c",
                &PRINTED.to_string(),
                "/dev/zero",
            ]))
            .await
            .unwrap();
        let done = registry.wait(spawned.handle_id, None).await.unwrap();
        assert_eq!(done.snapshot.stdout.bytes.len(), PRINTED);
        ids.push(spawned.handle_id);
    }
    // Read every one through the index (a finished poll is answered there)
    // and drop the answers, so only procward holds the bytes.
    for id in &ids {
        let polled = registry.poll(*id).await.unwrap();
        assert_eq!(polled.stdout.bytes.len(), PRINTED);
        let shared = registry.poll_shared(*id).await.unwrap();
        assert_eq!(shared.stdout.bytes.len(), PRINTED);
    }
    let held = LIVE_LARGE.load(Relaxed) - before;
    for id in &ids {
        assert!(registry.release(*id).await.unwrap());
    }
    let freed = eventually(Duration::from_secs(20), async || {
        LIVE_LARGE.load(Relaxed) <= before
    })
    .await;
    let left = LIVE_LARGE.load(Relaxed) - before;
    registry.shutdown().await.unwrap();
    assert!(
        held >= 8,
        "{held} large allocations held for 8 outputs of 1 MiB"
    );
    assert!(
        freed,
        "{left} allocation(s) of 192 KiB or more still held after every handle was released"
    );
}
