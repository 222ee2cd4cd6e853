//! A counting global allocator for the memory probe: live heap bytes and
//! allocations, and live allocations by size, so that the memory figure
//! can say what one running handle is made of.
//!
//! It counts only once [`start`] was called (the memory probe calls it);
//! until then every other figure pays one relaxed load per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};

/// Sizes are counted in steps of this many bytes...
const STEP: usize = 16;
/// ...up to this size; larger allocations share the last slot.
const LARGEST: usize = 16 * 1024;
const SLOTS: usize = LARGEST / STEP + 1;

/// The bench's allocator: the system's, counted.
pub(crate) struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static BYTES: AtomicI64 = AtomicI64::new(0);
static COUNT: AtomicI64 = AtomicI64::new(0);
static BY_SIZE: [AtomicI64; SLOTS] = [const { AtomicI64::new(0) }; SLOTS];

fn slot(size: usize) -> usize {
    (size.div_ceil(STEP)).min(SLOTS - 1)
}

fn count(size: usize, sign: i64) {
    if ON.load(Relaxed) {
        BYTES.fetch_add(sign * size as i64, Relaxed);
        COUNT.fetch_add(sign, Relaxed);
        BY_SIZE[slot(size)].fetch_add(sign, Relaxed);
    }
}

// SAFETY: every call is passed to `System` unchanged; the counters are
// atomics and allocate nothing.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
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

/// Turns counting on (for the rest of the process).
pub(crate) fn start() {
    ON.store(true, Relaxed);
}

/// Live heap at one moment.
pub(crate) struct Live {
    bytes: i64,
    count: i64,
    by_size: Vec<i64>,
}

/// The live heap now.
pub(crate) fn live() -> Live {
    Live {
        bytes: BYTES.load(Relaxed),
        count: COUNT.load(Relaxed),
        by_size: BY_SIZE.iter().map(|n| n.load(Relaxed)).collect(),
    }
}

impl Live {
    /// What was added since `before`, per one of `n` handles: bytes,
    /// allocations, and the sizes that more than half the handles hold
    /// (`(size, allocations per handle)`, size rounded up to 16 bytes).
    pub(crate) fn per_handle(&self, before: &Live, n: usize) -> (f64, f64, Vec<(usize, f64)>) {
        let n = n as f64;
        let sizes = self
            .by_size
            .iter()
            .zip(&before.by_size)
            .enumerate()
            .map(|(slot, (now, then))| (slot * STEP, (now - then) as f64 / n))
            .filter(|&(_, per)| per >= 0.5)
            .collect();
        (
            (self.bytes - before.bytes) as f64 / n,
            (self.count - before.count) as f64 / n,
            sizes,
        )
    }
}
