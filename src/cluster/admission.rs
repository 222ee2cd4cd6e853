//! The admission table of `procward node`: every connection that has not
//! authenticated yet, with the limits on them.
//!
//! A connection is *pending* from `accept` until its session
//! authenticates (or it ends). At most [`HandshakeLimits::per_address`]
//! connections from one IP address and [`HandshakeLimits::total`] in all
//! are pending at once. A new connection is never refused for lack of
//! room: it **evicts the oldest pending connection** of its own address
//! if that address is at its limit, or else, when the table is full, the
//! oldest of the address with the most pending connections. So peers
//! that connect and stay silent cannot keep anyone else from connecting:
//! they lose their places to newer connections, and their deadline closes
//! them anyway. What this does not stop: a peer that keeps opening
//! connections from the same address (or from many) can evict a
//! legitimate handshake under way from that address (or the busiest one)
//! before it completes.
//!
//! The table belongs to the listener's accept task: it is plain data,
//! changed only there.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::sync::oneshot;

use super::pre_auth::Verdict;

/// Limits on connections that have not authenticated yet (`procward node
/// --handshake-timeout`, `--max-pending-handshakes`,
/// `--max-pending-per-address`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandshakeLimits {
    /// From `accept` to authentication (the TLS handshake included): a
    /// connection still unauthenticated then is closed.
    pub timeout: Duration,
    /// Pending connections from one IP address.
    pub per_address: usize,
    /// Pending connections in all.
    pub total: usize,
}

impl Default for HandshakeLimits {
    /// 5 s, 8 per address, 256 in all.
    fn default() -> Self {
        HandshakeLimits {
            timeout: Duration::from_secs(5),
            per_address: 8,
            total: 256,
        }
    }
}

/// One pending connection.
#[derive(Debug)]
struct Entry {
    ip: IpAddr,
    label: String,
    /// Sends `()` on authentication; dropped, it closes the connection.
    verdict: oneshot::Sender<()>,
}

/// A connection let in: the label its session carries (as the peer
/// address ractor_cluster reports) and the verdict its reader waits for.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) label: String,
    pub(crate) verdict: Verdict,
    /// The label of the pending connection evicted to make room.
    pub(crate) evicted: Option<String>,
}

/// The pending connections, oldest first.
#[derive(Debug)]
pub(crate) struct Pending {
    limits: HandshakeLimits,
    next: u64,
    entries: BTreeMap<u64, Entry>,
}

impl Pending {
    pub(crate) fn new(limits: HandshakeLimits) -> Self {
        Pending {
            limits,
            next: 0,
            entries: BTreeMap::new(),
        }
    }

    /// How many connections are pending (after dropping those that ended).
    pub(crate) fn len(&mut self) -> usize {
        self.purge();
        self.entries.len()
    }

    /// Lets in a connection from `peer`, evicting one if the limits say
    /// so.
    pub(crate) fn admit(&mut self, peer: SocketAddr) -> Admitted {
        self.purge();
        let ip = peer.ip().to_canonical();
        let evicted = self.make_room(ip);
        let seq = self.next;
        self.next += 1;
        let label = format!("{peer}#{seq}");
        let (send, verdict) = oneshot::channel();
        self.entries.insert(
            seq,
            Entry {
                ip,
                label: label.clone(),
                verdict: send,
            },
        );
        Admitted {
            label,
            verdict,
            evicted,
        }
    }

    /// The session of connection `label` authenticated: it is no longer
    /// pending, and its reader is opened. Returns whether it was pending.
    pub(crate) fn authenticated(&mut self, label: &str) -> bool {
        let Some(seq) = self
            .entries
            .iter()
            .find_map(|(seq, entry)| (entry.label == label).then_some(*seq))
        else {
            return false;
        };
        match self.entries.remove(&seq) {
            // A reader already gone does not care.
            Some(entry) => entry.verdict.send(()).is_ok(),
            None => false,
        }
    }

    /// Forgets connections that ended (their reader dropped the verdict).
    fn purge(&mut self) {
        self.entries.retain(|_, entry| !entry.verdict.is_closed());
    }

    fn make_room(&mut self, ip: IpAddr) -> Option<String> {
        let mut per_ip: BTreeMap<IpAddr, usize> = BTreeMap::new();
        for entry in self.entries.values() {
            *per_ip.entry(entry.ip).or_default() += 1;
        }
        let victim_ip = if per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.per_address {
            ip
        } else if self.entries.len() >= self.limits.total {
            let most = per_ip.values().copied().max().unwrap_or(0);
            // The oldest entry among the addresses with the most.
            self.entries
                .values()
                .find(|entry| per_ip.get(&entry.ip) == Some(&most))
                .map(|entry| entry.ip)?
        } else {
            return None;
        };
        let seq = self
            .entries
            .iter()
            .find_map(|(seq, entry)| (entry.ip == victim_ip).then_some(*seq))?;
        // Dropping the sender closes the connection.
        self.entries.remove(&seq).map(|entry| entry.label)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn addr(ip: &str, port: u16) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), port)
    }

    fn limits(per_address: usize, total: usize) -> HandshakeLimits {
        HandshakeLimits {
            per_address,
            total,
            ..HandshakeLimits::default()
        }
    }

    #[test]
    fn an_address_at_its_limit_loses_its_oldest() {
        let mut table = Pending::new(limits(2, 100));
        let mut first = table.admit(addr("10.0.0.1", 1));
        let second = table.admit(addr("10.0.0.1", 2));
        let other = table.admit(addr("10.0.0.2", 1));
        let third = table.admit(addr("10.0.0.1", 3));
        assert_eq!(third.evicted.as_deref(), Some(first.label.as_str()));
        assert!(first.verdict.try_recv().is_err(), "evicted but still open");
        assert_eq!(table.len(), 3);
        assert!(table.authenticated(&second.label));
        assert!(table.authenticated(&other.label));
        assert!(!table.authenticated(&second.label), "authenticated twice");
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn a_full_table_evicts_from_the_busiest_address() {
        let mut table = Pending::new(limits(3, 4));
        let a1 = table.admit(addr("10.0.0.1", 1));
        let _b1 = table.admit(addr("10.0.0.2", 1));
        let _a2 = table.admit(addr("10.0.0.1", 2));
        let _c1 = table.admit(addr("10.0.0.3", 1));
        let d1 = table.admit(addr("10.0.0.4", 1));
        assert_eq!(d1.evicted.as_deref(), Some(a1.label.as_str()));
        assert_eq!(table.len(), 4);
    }

    #[test]
    fn ended_connections_free_their_place() {
        let mut table = Pending::new(limits(1, 1));
        let gone = table.admit(addr("10.0.0.1", 1));
        drop(gone.verdict);
        let next = table.admit(addr("10.0.0.1", 2));
        assert_eq!(next.evicted, None);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn an_authenticated_connection_is_told_so() {
        let mut table = Pending::new(limits(8, 8));
        let mut admitted = table.admit(addr("::ffff:10.0.0.1", 9));
        assert!(table.authenticated(&admitted.label));
        assert_eq!(admitted.verdict.try_recv(), Ok(()));
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn v4_mapped_addresses_count_as_their_v4_address() {
        let mut table = Pending::new(limits(1, 8));
        let first = table.admit(addr("10.0.0.1", 1));
        let second = table.admit(addr("::ffff:10.0.0.1", 2));
        assert_eq!(second.evicted.as_deref(), Some(first.label.as_str()));
    }
}
