//! Session events of a `NodeServer`: for a client, a watchable table of
//! the sessions it opened; for a node, the sessions that authenticated.
//!
//! ractor_cluster reports a session as soon as it opens and records the
//! name a peer *claims* before checking its cookie; it reports the
//! session's end with that name whatever its state. Nothing here trusts a
//! name until ractor_cluster says the session authenticated.

use std::collections::BTreeMap;

use ractor::ActorCell;
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::{NodeEventSubscription, NodeId};
use tokio::sync::{mpsc, watch};

/// Where a node session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The TCP connection is open; authentication is under way.
    Opened,
    /// Authenticated, and process groups are synchronised.
    Ready,
    /// Closed: a wrong cookie, a network error, or the peer went away.
    Closed,
}

/// One session as the table shows it.
#[derive(Debug, Clone)]
pub(crate) struct SessionView {
    pub(crate) peer_addr: String,
    pub(crate) peer_name: Option<String>,
    pub(crate) is_server: bool,
    pub(crate) phase: Phase,
    /// The session actor; the stubs of the peer's actors are its children.
    /// Let go once the session closes, so that a closed session's record
    /// holds no actor.
    pub(crate) session: Option<ActorCell>,
}

/// Every session the server has had, by node id. Closed sessions stay (as
/// `Closed`) so that a late waiter still learns that its node is gone.
pub(crate) type Sessions = BTreeMap<NodeId, SessionView>;

/// Feeds a client's `NodeServer` events into a [`watch`] table: only the
/// sessions the client opened itself (a client never needs one that a
/// peer opened to it, so a stranger reaching its listener leaves no
/// trace).
pub(crate) struct SessionWatcher {
    table: watch::Sender<Sessions>,
}

impl SessionWatcher {
    pub(crate) fn new(table: watch::Sender<Sessions>) -> Self {
        SessionWatcher { table }
    }

    fn set(&self, ses: &NodeServerSessionInformation, phase: Phase) {
        if ses.is_server {
            return;
        }
        let peer_name = ses.peer_name.as_ref().map(|name| name.name.clone());
        self.table.send_modify(|table| {
            let entry = table.entry(ses.node_id).or_insert_with(|| SessionView {
                peer_addr: ses.peer_addr.clone(),
                peer_name: None,
                is_server: ses.is_server,
                phase,
                session: Some(ses.actor.get_cell()),
            });
            if peer_name.is_some() {
                entry.peer_name = peer_name.clone();
            }
            // A closed session never reopens: its node id is not reused.
            if entry.phase != Phase::Closed {
                entry.phase = phase;
            }
            if entry.phase == Phase::Closed {
                entry.session = None;
            }
        });
    }
}

impl NodeEventSubscription for SessionWatcher {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        self.set(&ses, Phase::Opened);
    }

    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        self.set(&ses, Phase::Opened);
    }

    fn node_session_ready(&self, ses: NodeServerSessionInformation) {
        self.set(&ses, Phase::Ready);
    }

    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        self.set(&ses, Phase::Closed);
    }
}

/// What a node learns of its sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeEvent {
    /// Session `node_id` proved the cookie (and was elected, if the peer
    /// had several). `label` is its connection's admission label, `peer`
    /// the peer's full node name.
    Authenticated {
        node_id: NodeId,
        label: String,
        peer: String,
    },
    /// Session `node_id` ended, authenticated or not.
    Closed { node_id: NodeId },
}

/// Forwards a node's `NodeServer` events, as [`NodeEvent`]s, to the task
/// that owns the node's [`Authenticated`] table.
pub(crate) struct NodeWatcher {
    events: mpsc::UnboundedSender<NodeEvent>,
}

impl NodeWatcher {
    pub(crate) fn new(events: mpsc::UnboundedSender<NodeEvent>) -> Self {
        NodeWatcher { events }
    }
}

impl NodeEventSubscription for NodeWatcher {
    fn node_session_opened(&self, _: NodeServerSessionInformation) {}

    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        // ractor_cluster records the name before this event; without one
        // the session cannot own anything.
        if let Some(name) = ses.peer_name {
            // A closed receiver means the node is stopping.
            let _ = self.events.send(NodeEvent::Authenticated {
                node_id: ses.node_id,
                label: ses.peer_addr,
                peer: name.name,
            });
        }
    }

    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        let _ = self.events.send(NodeEvent::Closed {
            node_id: ses.node_id,
        });
    }
}

/// The authenticated sessions of a node and their peers' names. Only
/// sessions in it own processes or subscriptions; each is dropped when its
/// session ends.
#[derive(Debug, Default)]
pub(crate) struct Authenticated {
    peers: BTreeMap<NodeId, String>,
}

impl Authenticated {
    /// Records an authenticated session.
    pub(crate) fn insert(&mut self, node_id: NodeId, peer: String) {
        self.peers.insert(node_id, peer);
    }

    /// Forgets an ended session; returns its peer's name if it had
    /// authenticated (an unauthenticated one returns `None`, whatever
    /// name it claimed).
    pub(crate) fn close(&mut self, node_id: NodeId) -> Option<String> {
        self.peers.remove(&node_id)
    }

    /// How many authenticated sessions are open.
    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_authenticated_sessions_close_with_a_name() {
        let mut table = Authenticated::default();
        table.insert(1, "victim@127.0.0.1".to_owned());
        // Session 2 claimed the same name but never authenticated.
        assert_eq!(table.close(2), None);
        assert_eq!(table.len(), 1);
        assert_eq!(table.close(1).as_deref(), Some("victim@127.0.0.1"));
        assert_eq!(table.close(1), None);
        assert_eq!(table.len(), 0);
    }
}
