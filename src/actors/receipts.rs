//! Receipts: what is left of evicted handles, so that poll, wait and kill
//! still answer for them.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::handle_table::Owner;
use crate::messages::{HandleId, HandleSummary, ListFilter, Snapshot};

/// What a receipt holds.
#[derive(Debug)]
pub(crate) enum ReceiptState<R> {
    /// The handle was running when evicted: its actor is killing the tree
    /// and answers (with receipts) until it reports the end.
    Pending(R),
    /// The terminal snapshot without output.
    Done(Box<Snapshot>),
}

/// One evicted handle.
#[derive(Debug)]
pub(crate) struct Receipt<R> {
    pub(crate) summary: HandleSummary,
    pub(crate) state: ReceiptState<R>,
    /// A caller has been given the terminal status (before or after the
    /// eviction).
    pub(crate) observed: bool,
}

/// The receipts of one registry, at most `cap` of them; the oldest goes
/// first. Every operation is O(log n) but owner-wide ones, which scan, and
/// [`find_pending`](Self::find_pending), which looks only at the receipts
/// still pending (none, unless handles were evicted while running).
#[derive(Debug)]
pub(crate) struct Receipts<R> {
    cap: usize,
    map: HashMap<HandleId, Receipt<R>>,
    order: BTreeSet<HandleId>,
    /// The receipts in [`ReceiptState::Pending`]: a pending one turns
    /// `Done` only through [`settle`](Self::settle).
    pending: HashSet<HandleId>,
}

impl<R> Receipts<R> {
    pub(crate) fn new(cap: usize) -> Self {
        Receipts {
            cap,
            map: HashMap::new(),
            order: BTreeSet::new(),
            pending: HashSet::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn get(&self, id: &HandleId) -> Option<&Receipt<R>> {
        self.map.get(id)
    }

    /// Records that a caller was given the receipt's terminal status.
    pub(crate) fn observe(&mut self, id: &HandleId) {
        if let Some(receipt) = self.map.get_mut(id) {
            receipt.observed = true;
        }
    }

    /// A pending receipt's handle ended with `snapshot` (already without
    /// output); `observed`: a caller was given it. A receipt that is not
    /// pending is left as it is.
    pub(crate) fn settle(&mut self, id: &HandleId, snapshot: Snapshot, observed: bool) {
        if self.pending.remove(id)
            && let Some(receipt) = self.map.get_mut(id)
        {
            receipt.summary.status = snapshot.status;
            receipt.observed |= observed;
            receipt.state = ReceiptState::Done(Box::new(snapshot));
        }
    }

    /// Adds a receipt and returns those pushed out by the cap (all of them,
    /// the new one included, when the cap is 0).
    pub(crate) fn insert(&mut self, receipt: Receipt<R>) -> Vec<Receipt<R>> {
        let id = receipt.summary.handle_id;
        self.order.insert(id);
        if matches!(receipt.state, ReceiptState::Pending(_)) {
            self.pending.insert(id);
        }
        self.map.insert(id, receipt);
        let mut dropped = Vec::new();
        while self.map.len() > self.cap {
            let Some(oldest) = self.order.pop_first() else {
                break;
            };
            self.pending.remove(&oldest);
            if let Some(receipt) = self.map.remove(&oldest) {
                dropped.push(receipt);
            }
        }
        dropped
    }

    pub(crate) fn remove(&mut self, id: &HandleId) -> Option<Receipt<R>> {
        self.order.remove(id);
        self.pending.remove(id);
        self.map.remove(id)
    }

    /// The ids of `owner`'s receipts.
    pub(crate) fn all_of(&self, owner: &Owner) -> Vec<HandleId> {
        self.map
            .iter()
            .filter(|(_, r)| &r.summary.owner == owner)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The pending receipt whose actor matches. Looks at the pending
    /// receipts only: every process actor's end asks, and most registries
    /// have none.
    pub(crate) fn find_pending(&self, mut is_it: impl FnMut(&R) -> bool) -> Option<HandleId> {
        self.pending.iter().copied().find(|id| {
            matches!(self.map.get(id), Some(Receipt { state: ReceiptState::Pending(actor), .. }) if is_it(actor))
        })
    }

    /// The receipts that pass `filter`.
    pub(crate) fn summaries(&self, filter: &ListFilter) -> impl Iterator<Item = HandleSummary> {
        self.map
            .values()
            .map(|r| r.summary.clone())
            .filter(move |s| filter.matches(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Status;
    use time::OffsetDateTime;

    fn receipt(owner: Option<&str>) -> Receipt<()> {
        Receipt {
            summary: HandleSummary {
                handle_id: HandleId::next(1),
                pid: 1,
                command: "x".into(),
                status: Status::Exited,
                started_at: OffsetDateTime::UNIX_EPOCH,
                owner: owner.map(Into::into),
                evicted: true,
            },
            state: ReceiptState::Pending(()),
            observed: false,
        }
    }

    #[test]
    fn drops_the_oldest_past_the_cap() {
        let mut receipts = Receipts::new(2);
        let ids: Vec<HandleId> = (0..3)
            .map(|_| {
                let r = receipt(None);
                let id = r.summary.handle_id;
                receipts.insert(r);
                id
            })
            .collect();
        assert_eq!(receipts.len(), 2);
        assert!(receipts.get(&ids[0]).is_none());
        assert!(receipts.get(&ids[2]).is_some());
    }

    #[test]
    fn a_cap_of_zero_keeps_nothing() {
        let mut receipts = Receipts::new(0);
        let dropped = receipts.insert(receipt(None));
        assert_eq!(dropped.len(), 1);
        assert_eq!(receipts.len(), 0);
    }

    #[test]
    fn finds_by_owner_and_removes() {
        let mut receipts = Receipts::new(10);
        let a = receipt(Some("a"));
        let a_id = a.summary.handle_id;
        receipts.insert(a);
        receipts.insert(receipt(None));
        assert_eq!(receipts.all_of(&Some("a".into())), vec![a_id]);
        assert!(receipts.remove(&a_id).is_some());
        assert!(receipts.all_of(&Some("a".into())).is_empty());
        assert_eq!(receipts.len(), 1);
        assert!(receipts.find_pending(|_| true).is_some());
    }

    #[test]
    fn only_pending_receipts_are_found_and_settling_ends_that() {
        let mut receipts = Receipts::new(2);
        let pending = receipt(None);
        let pending_id = pending.summary.handle_id;
        receipts.insert(pending);
        let mut done = receipt(None);
        done.state = ReceiptState::Done(Box::new(finished(done.summary.handle_id)));
        receipts.insert(done);
        assert_eq!(receipts.find_pending(|_| true), Some(pending_id));
        receipts.settle(&pending_id, finished(pending_id), true);
        assert_eq!(receipts.find_pending(|_| true), None);
        let settled = receipts.get(&pending_id).expect("kept");
        assert!(matches!(settled.state, ReceiptState::Done(_)));
        assert!(settled.observed);
        // A pending receipt pushed out by the cap is not found either.
        receipts.insert(receipt(None));
        receipts.insert(receipt(None));
        receipts.insert(receipt(None));
        assert_eq!(receipts.len(), 2);
        assert_eq!(receipts.pending.len(), 2);
    }

    fn finished(id: HandleId) -> Snapshot {
        let mut snapshot = Snapshot::started(
            id,
            1,
            "x".into(),
            OffsetDateTime::UNIX_EPOCH,
            None,
            crate::messages::Containment::ProcessGroup,
        );
        snapshot.status = Status::Exited;
        snapshot
    }
}
