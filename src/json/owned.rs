//! The handles one connection spawned, so that they can be killed when it
//! closes.
//!
//! The registry has no owners yet, so a connection keeps its own set. A set
//! that only grew would hold every id a long-lived connection ever spawned;
//! instead it is pruned of handles that are no longer running whenever it
//! has doubled since the last pruning, which keeps it within twice the
//! number of running handles at an amortized O(1) cost per spawn.
//!
//! The set belongs to one task ([`Owned::start`]); the connection's
//! requests reach it through a channel, in the order they send, so a
//! spawn's id is in the set before a later [`Owned::take`] empties it.

use std::collections::HashSet;

use tokio::sync::{mpsc, oneshot};

use crate::messages::{HandleId, Status};
use crate::registry::Registry;

/// What the keeper task is asked to do.
#[derive(Debug)]
enum Command {
    Track(HandleId),
    Untrack(HandleId),
    Take(oneshot::Sender<Vec<HandleId>>),
}

/// A cheap handle to the task that keeps one connection's handles. The
/// task ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Owned {
    commands: mpsc::UnboundedSender<Command>,
}

impl Owned {
    /// Starts the keeper task on the current Tokio runtime; `None` outside
    /// one.
    pub(crate) fn start(registry: Registry) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (commands, received) = mpsc::unbounded_channel();
        runtime.spawn(keep(registry, received));
        Some(Owned { commands })
    }

    /// Adds `id` to the set.
    pub(crate) fn track(&self, id: HandleId) {
        // The keeper only stops once every sender is gone.
        let _ = self.commands.send(Command::Track(id));
    }

    /// Removes `id` from the set.
    pub(crate) fn untrack(&self, id: HandleId) {
        let _ = self.commands.send(Command::Untrack(id));
    }

    /// Empties the set, returning what it held (after every track and
    /// untrack sent before).
    pub(crate) async fn take(&self) -> Vec<HandleId> {
        let (reply, taken) = oneshot::channel();
        if self.commands.send(Command::Take(reply)).is_err() {
            return Vec::new();
        }
        taken.await.unwrap_or_default()
    }
}

/// The keeper task: owns the set and answers the commands in order.
async fn keep(registry: Registry, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut handles = OwnedHandles::default();
    while let Some(command) = commands.recv().await {
        match command {
            Command::Track(id) => {
                if handles.insert(id) {
                    prune(&registry, &mut handles).await;
                }
            }
            Command::Untrack(id) => handles.remove(&id),
            Command::Take(reply) => {
                let _ = reply.send(handles.take());
            }
        }
    }
}

/// Drops the handles the registry no longer runs.
async fn prune(registry: &Registry, handles: &mut OwnedHandles) {
    let checked = handles.ids();
    let Ok(summaries) = registry.list().await else {
        return;
    };
    let running: HashSet<HandleId> = summaries
        .iter()
        .filter(|summary| summary.status == Status::Running)
        .map(|summary| summary.handle_id)
        .collect();
    handles.prune(&checked, &running);
}

/// The smallest size at which the set is pruned.
const MIN_PRUNE_AT: usize = 256;

/// The set itself, with its pruning rule.
#[derive(Debug)]
pub(crate) struct OwnedHandles {
    ids: HashSet<HandleId>,
    prune_at: usize,
}

impl Default for OwnedHandles {
    fn default() -> Self {
        OwnedHandles {
            ids: HashSet::new(),
            prune_at: MIN_PRUNE_AT,
        }
    }
}

impl OwnedHandles {
    /// Adds `id`. Returns `true` when the set should now be pruned.
    pub(crate) fn insert(&mut self, id: HandleId) -> bool {
        self.ids.insert(id);
        self.ids.len() >= self.prune_at
    }

    pub(crate) fn remove(&mut self, id: &HandleId) {
        self.ids.remove(id);
    }

    /// The ids now in the set, to check against the registry before
    /// [`prune`](Self::prune).
    pub(crate) fn ids(&self) -> Vec<HandleId> {
        self.ids.iter().copied().collect()
    }

    /// Drops the ids of `checked` that are not `running`. Ids added since
    /// `checked` was taken are kept: the registry's answer may predate them.
    pub(crate) fn prune(&mut self, checked: &[HandleId], running: &HashSet<HandleId>) {
        for id in checked {
            if !running.contains(id) {
                self.ids.remove(id);
            }
        }
        self.prune_at = MIN_PRUNE_AT.max(self.ids.len().saturating_mul(2));
    }

    /// Empties the set, returning what it held.
    pub(crate) fn take(&mut self) -> Vec<HandleId> {
        self.ids.drain().collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RegistryConfig;

    fn ids(n: usize) -> Vec<HandleId> {
        (0..n)
            .map(|i| format!("psh-1-{i}").parse().unwrap())
            .collect()
    }

    #[test]
    fn asks_for_pruning_when_it_doubles() {
        let mut owned = OwnedHandles::default();
        let all = ids(MIN_PRUNE_AT);
        for id in &all[..MIN_PRUNE_AT - 1] {
            assert!(!owned.insert(*id));
        }
        assert!(owned.insert(all[MIN_PRUNE_AT - 1]));
    }

    #[test]
    fn pruning_keeps_running_and_newer_ids() {
        let mut owned = OwnedHandles::default();
        let all = ids(4);
        owned.insert(all[0]);
        owned.insert(all[1]);
        let checked = owned.ids();
        owned.insert(all[2]); // spawned while the registry was asked
        let running: HashSet<_> = [all[1]].into_iter().collect();
        owned.prune(&checked, &running);
        assert_eq!(owned.len(), 2);
        let mut left = owned.take();
        left.sort();
        assert_eq!(left, vec![all[1], all[2]]);
        assert!(owned.take().is_empty());
    }

    #[tokio::test]
    async fn the_keeper_tracks_in_order_and_prunes_what_is_not_running() {
        let config = RegistryConfig::default()
            .guard(false)
            .reap_orphans(false)
            .kill_escapees(false);
        let registry = Registry::start(config).await.unwrap();
        let owned = Owned::start(registry.clone()).unwrap();
        // Ids the registry never ran: the pruning at MIN_PRUNE_AT drops them.
        let all = ids(MIN_PRUNE_AT + 10);
        for id in &all {
            owned.track(*id);
        }
        owned.untrack(all[MIN_PRUNE_AT]);
        let mut left = owned.take().await;
        left.sort();
        let mut expected = all[MIN_PRUNE_AT + 1..].to_vec();
        expected.sort();
        assert_eq!(left, expected);
        assert!(owned.take().await.is_empty());
        registry.shutdown().await.unwrap();
    }
}
