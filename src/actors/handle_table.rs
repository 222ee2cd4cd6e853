//! The registry's handle map and its eviction order.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use crate::messages::{HandleId, HandleSummary, Snapshot, Status};

/// Where a handle is, as the registry sees it.
#[derive(Debug)]
pub(crate) enum EntryState<R> {
    /// The process actor `R` owns the process and answers for it.
    Running(R),
    /// Terminal: the registry answers from this snapshot.
    Finished(Box<Snapshot>),
}

/// What the table needs of the actor owning a running handle: a key to find
/// the handle again when only the actor is known (on a supervision event).
pub(crate) trait RunningActor {
    /// The actor's identity.
    type Key: Hash + Eq;
    /// This actor's key.
    fn key(&self) -> Self::Key;
}

/// One handle in the table.
#[derive(Debug)]
pub(crate) struct Entry<R> {
    pub(crate) summary: HandleSummary,
    pub(crate) state: EntryState<R>,
}

/// The handles a registry knows, each either running (owned by a process
/// actor `R`) or finished (a terminal snapshot).
///
/// Eviction takes the oldest finished handle, or when there is none the
/// oldest running one. Both orders are kept in ordered sets keyed by the
/// handle id (which orders by spawn number), so inserting, finishing,
/// removing and picking a victim cost O(log n).
#[derive(Debug)]
pub(crate) struct HandleTable<R: RunningActor> {
    entries: HashMap<HandleId, Entry<R>>,
    running: BTreeSet<HandleId>,
    finished: BTreeSet<HandleId>,
    /// The running handles by their actor's key.
    by_actor: HashMap<R::Key, HandleId>,
}

impl<R: RunningActor> Default for HandleTable<R> {
    fn default() -> Self {
        HandleTable {
            entries: HashMap::new(),
            running: BTreeSet::new(),
            finished: BTreeSet::new(),
            by_actor: HashMap::new(),
        }
    }
}

impl<R: RunningActor> HandleTable<R> {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn get(&self, id: &HandleId) -> Option<&Entry<R>> {
        self.entries.get(id)
    }

    /// Adds a running handle.
    pub(crate) fn insert_running(&mut self, summary: HandleSummary, actor: R) {
        let id = summary.handle_id;
        self.running.insert(id);
        self.by_actor.insert(actor.key(), id);
        self.entries.insert(
            id,
            Entry {
                summary,
                state: EntryState::Running(actor),
            },
        );
    }

    /// Stores the terminal snapshot of a running handle and returns the
    /// actor that owned it. `None` when the handle is unknown (released or
    /// evicted meanwhile) or already finished: the first report wins.
    pub(crate) fn finish(&mut self, snapshot: Snapshot) -> Option<R> {
        let id = snapshot.handle_id;
        let entry = self.entries.get_mut(&id)?;
        if matches!(entry.state, EntryState::Finished(_)) {
            return None;
        }
        entry.summary.status = snapshot.status;
        let EntryState::Running(actor) =
            std::mem::replace(&mut entry.state, EntryState::Finished(Box::new(snapshot)))
        else {
            return None;
        };
        self.running.remove(&id);
        self.finished.insert(id);
        self.by_actor.remove(&actor.key());
        Some(actor)
    }

    /// Forgets a handle.
    pub(crate) fn remove(&mut self, id: &HandleId) -> Option<Entry<R>> {
        let entry = self.entries.remove(id)?;
        self.running.remove(id);
        self.finished.remove(id);
        if let EntryState::Running(actor) = &entry.state {
            self.by_actor.remove(&actor.key());
        }
        Some(entry)
    }

    /// The handle to evict next: the oldest finished one, else the oldest
    /// running one.
    pub(crate) fn eviction_candidate(&self) -> Option<HandleId> {
        self.finished
            .first()
            .or_else(|| self.running.first())
            .copied()
    }

    /// The running handle owned by the actor with this key.
    pub(crate) fn running_handle(&self, key: &R::Key) -> Option<HandleId> {
        self.by_actor.get(key).copied()
    }

    /// Every handle, oldest first.
    pub(crate) fn summaries(&self) -> Vec<HandleSummary> {
        let mut all: Vec<HandleSummary> =
            self.entries.values().map(|e| e.summary.clone()).collect();
        all.sort_by_key(|s| s.handle_id);
        all
    }

    /// The actors of every running handle.
    pub(crate) fn running_actors(&self) -> impl Iterator<Item = &R> {
        self.running
            .iter()
            .filter_map(|id| match self.entries.get(id) {
                Some(Entry {
                    state: EntryState::Running(r),
                    ..
                }) => Some(r),
                _ => None,
            })
    }
}

/// A summary's status for a running entry.
pub(crate) fn running_summary(snapshot: &Snapshot) -> HandleSummary {
    HandleSummary {
        handle_id: snapshot.handle_id,
        pid: snapshot.pid,
        command: snapshot.command.clone(),
        status: Status::Running,
        started_at: snapshot.started_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::StreamOutput;
    use time::OffsetDateTime;

    impl RunningActor for u32 {
        type Key = u32;
        fn key(&self) -> u32 {
            *self
        }
    }

    fn snapshot(pid: u32, status: Status) -> Snapshot {
        Snapshot {
            handle_id: HandleId::next(pid),
            pid,
            command: "x".into(),
            status,
            started_at: OffsetDateTime::UNIX_EPOCH,
            ended_at: None,
            exit_code: None,
            signal: None,
            stdout: StreamOutput::default(),
            stderr: StreamOutput::default(),
            failure: None,
        }
    }

    fn table_of(n: u32) -> (HandleTable<u32>, Vec<Snapshot>) {
        let mut table = HandleTable::default();
        let snaps: Vec<Snapshot> = (0..n).map(|i| snapshot(i + 1, Status::Running)).collect();
        for (i, s) in snaps.iter().enumerate() {
            table.insert_running(running_summary(s), i as u32);
        }
        (table, snaps)
    }

    #[test]
    fn evicts_oldest_running_when_nothing_finished() {
        let (table, snaps) = table_of(3);
        assert_eq!(table.eviction_candidate(), Some(snaps[0].handle_id));
    }

    #[test]
    fn evicts_oldest_finished_before_any_running() {
        let (mut table, snaps) = table_of(4);
        for i in [3, 1] {
            let mut done = snaps[i].clone();
            done.status = Status::Exited;
            assert_eq!(table.finish(done), Some(i as u32));
        }
        assert_eq!(table.eviction_candidate(), Some(snaps[1].handle_id));
        assert_eq!(table.running_handle(&1), None);
        table.remove(&snaps[1].handle_id);
        assert_eq!(table.eviction_candidate(), Some(snaps[3].handle_id));
        table.remove(&snaps[3].handle_id);
        assert_eq!(table.eviction_candidate(), Some(snaps[0].handle_id));
        table.remove(&snaps[0].handle_id);
        assert_eq!(table.running_handle(&0), None);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn first_finish_wins() {
        let (mut table, snaps) = table_of(1);
        let mut done = snaps[0].clone();
        done.status = Status::Killed;
        assert!(table.finish(done.clone()).is_some());
        done.status = Status::Exited;
        assert!(table.finish(done).is_none());
        match &table.get(&snaps[0].handle_id).map(|e| &e.state) {
            Some(EntryState::Finished(s)) => assert_eq!(s.status, Status::Killed),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn finishing_an_unknown_handle_is_ignored() {
        let (mut table, _) = table_of(1);
        assert!(table.finish(snapshot(99, Status::Exited)).is_none());
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn lists_oldest_first_and_finds_by_actor() {
        let (table, snaps) = table_of(5);
        let ids: Vec<HandleId> = table.summaries().iter().map(|s| s.handle_id).collect();
        let expected: Vec<HandleId> = snaps.iter().map(|s| s.handle_id).collect();
        assert_eq!(ids, expected);
        assert_eq!(table.running_handle(&2), Some(snaps[2].handle_id));
        assert_eq!(table.running_actors().count(), 5);
    }
}
