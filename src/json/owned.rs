//! The handles one connection spawned, so that they can be killed when it
//! closes.
//!
//! The registry has no owners yet, so a connection keeps its own set. A set
//! that only grew would hold every id a long-lived connection ever spawned;
//! instead it is pruned of handles that are no longer running whenever it
//! has doubled since the last pruning, which keeps it within twice the
//! number of running handles at an amortized O(1) cost per spawn.

use std::collections::HashSet;

use crate::messages::HandleId;

/// The smallest size at which the set is pruned.
const MIN_PRUNE_AT: usize = 256;

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
}
