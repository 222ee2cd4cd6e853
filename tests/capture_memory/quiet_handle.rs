//! A child that printed a burst and then went quiet, still running: once
//! its output is captured, procward holds no buffer of the burst's reader
//! (a 256 KiB block) beyond the kept output itself.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use procward::{KillRequest, Registry, RegistryConfig, SpawnRequest};

use crate::{LIVE_LARGE, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_handle_holds_no_read_block() {
    let _turn = crate::SERIAL.lock().await;
    const BURST: u64 = 64 * 1024;
    let registry = Registry::start(RegistryConfig::default()).await.unwrap();
    let before = LIVE_LARGE.load(Relaxed);
    // One write of 64 KiB fills a fresh pipe and wakes the reader once it
    // is all there: the reader takes a block for it, and slices the chunk
    // off. The capture copies the chunk into its head; only the reader
    // could then still hold the block.
    let spawned = registry
        .spawn(SpawnRequest::shell(
            "dd if=/dev/zero bs=65536 count=1 status=none; exec sleep 30",
        ))
        .await
        .unwrap();
    let id = spawned.handle_id;
    let printed = eventually(Duration::from_secs(20), async || {
        registry
            .poll(id)
            .await
            .is_ok_and(|s| s.stdout.total_bytes == BURST)
    })
    .await;
    let quiet = eventually(Duration::from_secs(20), async || {
        LIVE_LARGE.load(Relaxed) <= before
    })
    .await;
    let still_running = registry.poll(id).await.map(|s| s.running());
    let left = LIVE_LARGE.load(Relaxed) - before;
    registry.kill(id, KillRequest::default()).await.unwrap();
    registry.release(id).await.unwrap();
    registry.shutdown().await.unwrap();
    assert!(printed, "the burst was not captured in time");
    assert_eq!(
        still_running.ok(),
        Some(true),
        "the child went quiet, not away"
    );
    assert!(
        quiet,
        "{left} allocation(s) of 192 KiB or more still held by a quiet handle"
    );
}
