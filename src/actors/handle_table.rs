//! The registry's handle map and its eviction order.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::Arc;

use crate::messages::{HandleId, HandleSummary, ListFilter, Snapshot, Status};

/// Who spawned a handle: its owner key, or `None` for no owner (which is an
/// owner of its own for eviction).
pub(crate) type Owner = Option<Arc<str>>;

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
    /// A caller has been given the terminal snapshot.
    pub(crate) observed: bool,
}

/// The eviction groups, in the order they are evicted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Terminal, and a caller has seen the terminal status.
    Observed = 0,
    /// Terminal, nobody has seen it yet.
    Unobserved = 1,
    /// Running: evicted only as the last resort.
    Running = 2,
}

impl<R> Entry<R> {
    fn class(&self) -> Class {
        match (&self.state, self.observed) {
            (EntryState::Running(_), _) => Class::Running,
            (EntryState::Finished(_), true) => Class::Observed,
            (EntryState::Finished(_), false) => Class::Unobserved,
        }
    }
}

/// One eviction group, ordered by age and by owner then age.
#[derive(Debug, Default)]
struct ClassIndex {
    by_age: BTreeSet<HandleId>,
    by_owner: BTreeSet<(Owner, HandleId)>,
}

impl ClassIndex {
    fn insert(&mut self, id: HandleId, owner: &Owner) {
        self.by_age.insert(id);
        self.by_owner.insert((owner.clone(), id));
    }

    fn remove(&mut self, id: HandleId, owner: &Owner) {
        self.by_age.remove(&id);
        self.by_owner.remove(&(owner.clone(), id));
    }

    /// The oldest handle of `owner` in this group.
    fn oldest_of(&self, owner: &Owner) -> Option<HandleId> {
        self.by_owner
            .range((owner.clone(), HandleId::MIN)..)
            .next()
            .filter(|(o, _)| o == owner)
            .map(|(_, id)| *id)
    }

    /// Every handle of `owner` in this group.
    fn all_of<'a>(&'a self, owner: &'a Owner) -> impl Iterator<Item = HandleId> + 'a {
        self.by_owner
            .range((owner.clone(), HandleId::MIN)..)
            .take_while(move |(o, _)| o == owner)
            .map(|(_, id)| *id)
    }
}

/// The handles a registry knows, each either running (owned by a process
/// actor `R`) or finished (a terminal snapshot), indexed for eviction.
///
/// Eviction picks from the first non-empty group of observed terminal,
/// unobserved terminal, running; within it, the spawning owner's oldest
/// handle, else the oldest of all. Every group keeps its handles in two
/// ordered sets (by age, and by owner then age), so inserting, finishing,
/// observing, removing and picking a victim cost O(log n) whatever the
/// number of handles.
#[derive(Debug)]
pub(crate) struct HandleTable<R: RunningActor> {
    entries: HashMap<HandleId, Entry<R>>,
    classes: [ClassIndex; 3],
    /// The running handles by their actor's key.
    by_actor: HashMap<R::Key, HandleId>,
}

impl<R: RunningActor> Default for HandleTable<R> {
    fn default() -> Self {
        HandleTable {
            entries: HashMap::new(),
            classes: Default::default(),
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

    fn index(&mut self, id: HandleId) {
        if let Some(entry) = self.entries.get(&id) {
            let class = entry.class();
            self.classes[class as usize].insert(id, &entry.summary.owner);
        }
    }

    fn unindex(&mut self, id: HandleId) {
        if let Some(entry) = self.entries.get(&id) {
            let class = entry.class();
            self.classes[class as usize].remove(id, &entry.summary.owner);
        }
    }

    /// Adds a running handle.
    pub(crate) fn insert_running(&mut self, summary: HandleSummary, actor: R) {
        let id = summary.handle_id;
        self.by_actor.insert(actor.key(), id);
        self.entries.insert(
            id,
            Entry {
                summary,
                state: EntryState::Running(actor),
                observed: false,
            },
        );
        self.index(id);
    }

    /// Stores the terminal snapshot of a running handle and returns the
    /// actor that owned it. `None` when the handle is unknown (released or
    /// evicted meanwhile) or already finished: the first report wins.
    pub(crate) fn finish(&mut self, snapshot: Snapshot, observed: bool) -> Option<R> {
        let id = snapshot.handle_id;
        if !matches!(self.entries.get(&id)?.state, EntryState::Running(_)) {
            return None;
        }
        self.unindex(id);
        let entry = self.entries.get_mut(&id)?;
        entry.summary.status = snapshot.status;
        entry.observed = observed;
        let previous =
            std::mem::replace(&mut entry.state, EntryState::Finished(Box::new(snapshot)));
        self.index(id);
        let EntryState::Running(actor) = previous else {
            return None;
        };
        self.by_actor.remove(&actor.key());
        Some(actor)
    }

    /// Records that a caller was given the handle's terminal snapshot.
    pub(crate) fn observe(&mut self, id: HandleId) {
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        if entry.observed || !matches!(entry.state, EntryState::Finished(_)) {
            return;
        }
        self.unindex(id);
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.observed = true;
        }
        self.index(id);
    }

    /// Forgets a handle.
    pub(crate) fn remove(&mut self, id: &HandleId) -> Option<Entry<R>> {
        self.unindex(*id);
        let entry = self.entries.remove(id)?;
        if let EntryState::Running(actor) = &entry.state {
            self.by_actor.remove(&actor.key());
        }
        Some(entry)
    }

    /// The handle to evict for a spawn by `owner`; see the type's docs.
    pub(crate) fn eviction_candidate(&self, owner: &Owner) -> Option<HandleId> {
        self.classes.iter().find_map(|class| {
            class
                .oldest_of(owner)
                .or_else(|| class.by_age.first().copied())
        })
    }

    /// The handle to evict for a spawn by `owner` that may not evict a
    /// running one: as [`eviction_candidate`](Self::eviction_candidate),
    /// among the finished handles only.
    pub(crate) fn finished_eviction_candidate(&self, owner: &Owner) -> Option<HandleId> {
        self.classes[..Class::Running as usize]
            .iter()
            .find_map(|class| {
                class
                    .oldest_of(owner)
                    .or_else(|| class.by_age.first().copied())
            })
    }

    /// The running handle owned by the actor with this key.
    pub(crate) fn running_handle(&self, key: &R::Key) -> Option<HandleId> {
        self.by_actor.get(key).copied()
    }

    /// How many handles are running.
    pub(crate) fn running_count(&self) -> usize {
        self.classes[Class::Running as usize].by_age.len()
    }

    /// The running handles of `owner`, oldest first.
    pub(crate) fn running_of(&self, owner: &Owner) -> Vec<HandleId> {
        self.classes[Class::Running as usize]
            .all_of(owner)
            .collect()
    }

    /// Every handle of `owner`.
    pub(crate) fn all_of(&self, owner: &Owner) -> Vec<HandleId> {
        self.classes.iter().flat_map(|c| c.all_of(owner)).collect()
    }

    /// The handles that pass `filter`, oldest first.
    pub(crate) fn summaries(&self, filter: &ListFilter) -> Vec<HandleSummary> {
        let mut all: Vec<HandleSummary> = match &filter.owner {
            Some(owner) => {
                let owner: Owner = Some(owner.as_str().into());
                self.all_of(&owner)
                    .iter()
                    .filter_map(|id| self.entries.get(id))
                    .map(|e| e.summary.clone())
                    .filter(|s| filter.matches(s))
                    .collect()
            }
            None => self
                .entries
                .values()
                .map(|e| e.summary.clone())
                .filter(|s| filter.matches(s))
                .collect(),
        };
        all.sort_by_key(|s| s.handle_id);
        all
    }

    /// The actors of every running handle.
    pub(crate) fn running_actors(&self) -> impl Iterator<Item = &R> {
        self.entries.values().filter_map(|e| match &e.state {
            EntryState::Running(r) => Some(r),
            EntryState::Finished(_) => None,
        })
    }
}

/// A summary's status for a running entry.
pub(crate) fn running_summary(snapshot: &Snapshot) -> HandleSummary {
    let mut summary = snapshot.summary();
    summary.status = Status::Running;
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    impl RunningActor for u32 {
        type Key = u32;
        fn key(&self) -> u32 {
            *self
        }
    }

    fn snapshot(pid: u32, owner: Option<&str>) -> Snapshot {
        Snapshot::started(
            HandleId::next(pid),
            pid,
            "x".into(),
            OffsetDateTime::UNIX_EPOCH,
            owner.map(Into::into),
            crate::messages::Containment::ProcessGroup,
        )
    }

    /// A table of `owners.len()` running handles, actor keys 0, 1, ...
    fn table_of(owners: &[Option<&str>]) -> (HandleTable<u32>, Vec<Snapshot>) {
        let mut table = HandleTable::default();
        let snaps: Vec<Snapshot> = owners
            .iter()
            .enumerate()
            .map(|(i, o)| snapshot(i as u32 + 1, *o))
            .collect();
        for (i, s) in snaps.iter().enumerate() {
            table.insert_running(running_summary(s), i as u32);
        }
        (table, snaps)
    }

    fn finish(table: &mut HandleTable<u32>, snap: &Snapshot, observed: bool) {
        let mut done = snap.clone();
        done.status = Status::Exited;
        assert!(table.finish(done, observed).is_some());
    }

    #[test]
    fn evicts_oldest_running_when_nothing_finished() {
        let (table, snaps) = table_of(&[None, None, None]);
        assert_eq!(table.eviction_candidate(&None), Some(snaps[0].handle_id));
    }

    #[test]
    fn evicts_observed_then_unobserved_then_running() {
        let (mut table, snaps) = table_of(&[None, None, None, None]);
        finish(&mut table, &snaps[1], false);
        finish(&mut table, &snaps[3], false);
        assert_eq!(table.eviction_candidate(&None), Some(snaps[1].handle_id));
        table.observe(snaps[3].handle_id);
        assert_eq!(table.eviction_candidate(&None), Some(snaps[3].handle_id));
        table.remove(&snaps[3].handle_id);
        assert_eq!(table.eviction_candidate(&None), Some(snaps[1].handle_id));
        table.remove(&snaps[1].handle_id);
        assert_eq!(table.eviction_candidate(&None), Some(snaps[0].handle_id));
        assert_eq!(table.running_handle(&1), None);
        table.remove(&snaps[0].handle_id);
        assert_eq!(table.running_handle(&0), None);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn a_spawn_that_may_not_evict_running_handles_only_takes_finished_ones() {
        let (mut table, snaps) = table_of(&[None, None, None]);
        assert_eq!(table.finished_eviction_candidate(&None), None);
        finish(&mut table, &snaps[2], false);
        assert_eq!(
            table.finished_eviction_candidate(&None),
            Some(snaps[2].handle_id)
        );
        finish(&mut table, &snaps[1], false);
        table.observe(snaps[1].handle_id);
        assert_eq!(
            table.finished_eviction_candidate(&None),
            Some(snaps[1].handle_id)
        );
    }

    #[test]
    fn within_a_group_the_spawning_owner_goes_first() {
        let (mut table, snaps) = table_of(&[Some("a"), Some("b"), Some("b"), None]);
        for s in &snaps {
            finish(&mut table, s, false);
        }
        assert_eq!(
            table.eviction_candidate(&Some("b".into())),
            Some(snaps[1].handle_id)
        );
        assert_eq!(
            table.eviction_candidate(&Some("a".into())),
            Some(snaps[0].handle_id)
        );
        assert_eq!(table.eviction_candidate(&None), Some(snaps[3].handle_id));
        // An owner with nothing in the group: the oldest of all.
        assert_eq!(
            table.eviction_candidate(&Some("zz".into())),
            Some(snaps[0].handle_id)
        );
        // An observed handle of another owner still goes before the
        // spawning owner's unobserved ones.
        table.observe(snaps[3].handle_id);
        assert_eq!(
            table.eviction_candidate(&Some("b".into())),
            Some(snaps[3].handle_id)
        );
    }

    #[test]
    fn first_finish_wins() {
        let (mut table, snaps) = table_of(&[None]);
        let mut done = snaps[0].clone();
        done.status = Status::Killed;
        assert!(table.finish(done.clone(), false).is_some());
        done.status = Status::Exited;
        assert!(table.finish(done, true).is_none());
        match &table.get(&snaps[0].handle_id).map(|e| &e.state) {
            Some(EntryState::Finished(s)) => assert_eq!(s.status, Status::Killed),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn finishing_an_unknown_handle_is_ignored() {
        let (mut table, _) = table_of(&[None]);
        assert!(table.finish(snapshot(99, None), false).is_none());
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn lists_by_owner_and_status() {
        let (mut table, snaps) = table_of(&[Some("a"), Some("b"), Some("a"), None]);
        finish(&mut table, &snaps[2], true);
        let ids = |filter: ListFilter| -> Vec<HandleId> {
            table
                .summaries(&filter)
                .iter()
                .map(|s| s.handle_id)
                .collect()
        };
        assert_eq!(ids(ListFilter::default()).len(), 4);
        let of_a = ListFilter {
            owner: Some("a".into()),
            status: None,
        };
        assert_eq!(ids(of_a), vec![snaps[0].handle_id, snaps[2].handle_id]);
        let running_a = ListFilter {
            owner: Some("a".into()),
            status: Some(Status::Running),
        };
        assert_eq!(ids(running_a), vec![snaps[0].handle_id]);
        assert_eq!(
            table.running_of(&Some("a".into())),
            vec![snaps[0].handle_id]
        );
        assert_eq!(table.running_handle(&1), Some(snaps[1].handle_id));
        assert_eq!(table.running_actors().count(), 3);
    }

    #[test]
    fn indexes_stay_consistent_under_churn() {
        let owners = [Some("a"), None, Some("b")];
        let (mut table, snaps) = table_of(&owners.repeat(20));
        for (i, s) in snaps.iter().enumerate() {
            match i % 4 {
                0 => finish(&mut table, s, true),
                1 => finish(&mut table, s, false),
                2 => {
                    table.remove(&s.handle_id);
                }
                _ => {}
            }
        }
        // Evicting until empty visits every remaining handle exactly once.
        let mut seen = BTreeSet::new();
        while let Some(id) = table.eviction_candidate(&Some("b".into())) {
            assert!(seen.insert(id));
            table.remove(&id);
        }
        assert_eq!(table.len(), 0);
        assert!(
            table
                .classes
                .iter()
                .all(|c| c.by_age.is_empty() && c.by_owner.is_empty())
        );
    }
}
