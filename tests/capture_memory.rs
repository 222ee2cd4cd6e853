//! A child that writes 1 GiB is captured within the default cap, and this
//! process's peak memory grows by far less than what the child wrote; a
//! handle that printed a burst and went quiet holds no read block; a
//! released handle's output is freed.
//!
//! The tests take turns ([`SERIAL`]), so nothing else moves the peak the
//! first one measures, nor the allocations the others count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use procward::{DEFAULT_OUTPUT_CAP, Registry, RegistryConfig, SpawnRequest, Status};

mod capture_memory {
    mod quiet_handle;
    mod released_output;
}

/// Held by each test for its whole run.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Allocations at least this large: a reader's block (256 KiB), never the
/// 64 KiB of output the test's child prints, nor its copy in the capture.
pub(crate) const LARGE: usize = 192 * 1024;

/// Live allocations of at least [`LARGE`] bytes, in this whole process.
pub(crate) static LIVE_LARGE: AtomicIsize = AtomicIsize::new(0);

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
pub(crate) async fn eventually(within: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
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

/// Peak resident memory of this process so far, in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmHWM line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_of_output_costs_less_than_64_mib() {
    let _turn = SERIAL.lock().await;
    const GIB: u64 = 1 << 30;
    let registry = Registry::start(RegistryConfig::default().reap_orphans(true))
        .await
        .unwrap();
    let before = peak_rss_kib();

    let spawned = registry
        .spawn(SpawnRequest::argv([
            "head",
            "-c",
            "1073741824",
            "/dev/zero",
        ]))
        .await
        .unwrap();
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .unwrap()
        .snapshot;

    let growth_mib = (peak_rss_kib() - before) / 1024;
    assert_eq!(done.status, Status::Exited);
    assert_eq!(done.exit_code, Some(0));
    assert!(done.stdout.truncated);
    assert_eq!(done.stdout.total_bytes, GIB);
    assert_eq!(done.stdout.bytes.len(), DEFAULT_OUTPUT_CAP);
    assert!(done.stdout.bytes.iter().all(|&b| b == 0));
    assert!(
        growth_mib < 64,
        "peak RSS grew by {growth_mib} MiB while capturing 1 GiB"
    );
    eprintln!("peak RSS growth while capturing 1 GiB: {growth_mib} MiB");
    registry.shutdown().await.unwrap();
}
