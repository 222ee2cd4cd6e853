//! Receipts: what is left of evicted handles, so that poll, wait and kill
//! still answer for them.

use std::collections::{BTreeSet, HashMap};

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
/// first. Every operation is O(log n) but owner-wide ones, which scan.
#[derive(Debug)]
pub(crate) struct Receipts<R> {
    cap: usize,
    map: HashMap<HandleId, Receipt<R>>,
    order: BTreeSet<HandleId>,
}

impl<R> Receipts<R> {
    pub(crate) fn new(cap: usize) -> Self {
        Receipts {
            cap,
            map: HashMap::new(),
            order: BTreeSet::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn get(&self, id: &HandleId) -> Option<&Receipt<R>> {
        self.map.get(id)
    }

    pub(crate) fn get_mut(&mut self, id: &HandleId) -> Option<&mut Receipt<R>> {
        self.map.get_mut(id)
    }

    /// Adds a receipt and returns those pushed out by the cap (all of them,
    /// the new one included, when the cap is 0).
    pub(crate) fn insert(&mut self, receipt: Receipt<R>) -> Vec<Receipt<R>> {
        let id = receipt.summary.handle_id;
        self.order.insert(id);
        self.map.insert(id, receipt);
        let mut dropped = Vec::new();
        while self.map.len() > self.cap {
            let Some(oldest) = self.order.pop_first() else {
                break;
            };
            if let Some(receipt) = self.map.remove(&oldest) {
                dropped.push(receipt);
            }
        }
        dropped
    }

    pub(crate) fn remove(&mut self, id: &HandleId) -> Option<Receipt<R>> {
        self.order.remove(id);
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

    /// The receipt whose pending actor matches.
    pub(crate) fn find_pending(&self, mut is_it: impl FnMut(&R) -> bool) -> Option<HandleId> {
        self.map.iter().find_map(|(id, r)| match &r.state {
            ReceiptState::Pending(actor) if is_it(actor) => Some(*id),
            _ => None,
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
}
