//! A child that printed a burst and then went quiet, still running: once
//! its output is captured, procward holds no buffer of the burst's reader
//! (a 256 KiB block) beyond the kept output itself.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use procward::{KillRequest, Registry, RegistryConfig, SpawnRequest};

/// Allocations at least this large: a reader's block (256 KiB), never the
/// 64 KiB of output the test's child prints, nor its copy in the capture.
const LARGE: usize = 192 * 1024;

/// Live allocations of at least [`LARGE`] bytes, in this whole process.
static LIVE_LARGE: AtomicIsize = AtomicIsize::new(0);

/// The system allocator, counting the large allocations alive.
struct CountingLarge;

fn count(size: usize, sign: isize) {
    if size >= LARGE {
        LIVE_LARGE.fetch_add(sign, Relaxed);
    }
}

// SAFETY: every call is passed to `System` unchanged; the counter is an
// atomic and allocates nothing.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingLarge {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 1);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(layout.size(), -1);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 1);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(layout.size(), -1);
        count(new_size, 1);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingLarge = CountingLarge;

/// Waits until `done` holds, or `within` passes; whether it held.
async fn eventually(within: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if done().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

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
