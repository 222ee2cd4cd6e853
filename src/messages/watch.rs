//! [`SnapshotWatch`]: a handle's latest snapshot, read without a message.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::Snapshot;

/// The latest snapshot of one handle, published by its process actor (the
/// only writer) and read by anyone holding the watch, with no message, no
/// await and no lock: a read is an atomic load and a reference-count
/// increment.
///
/// What it shows and when:
/// - status changes (pause, resume) and the terminal snapshot are
///   published before anyone is answered about them: once a wait or kill
///   returned, the watch shows the terminal snapshot;
/// - output is published at most every [`PUBLISH_INTERVAL`] (so a running
///   handle's watch may show output up to that much behind); use
///   `read` or a subscription for every byte as it comes;
/// - the watch keeps the last snapshot after the registry forgets the
///   handle (release, receipt expiry), and costs one snapshot's memory.
///
/// Clone it freely: clones share the cell.
#[derive(Debug, Clone)]
pub struct SnapshotWatch(pub(crate) Arc<ArcSwap<Snapshot>>);

/// How often at most a running process publishes new output to its watch.
pub const PUBLISH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

impl SnapshotWatch {
    pub(crate) fn new(snapshot: Snapshot) -> Self {
        SnapshotWatch(Arc::new(ArcSwap::from_pointee(snapshot)))
    }

    pub(crate) fn publish(&self, snapshot: Snapshot) {
        self.0.store(Arc::new(snapshot));
    }

    /// The latest published snapshot.
    pub fn get(&self) -> Arc<Snapshot> {
        self.0.load_full()
    }
}
