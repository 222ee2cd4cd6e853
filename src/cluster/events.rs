//! Session events of a `NodeServer`, turned into a watchable table.

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
    pub(crate) session: ActorCell,
}

/// Every session the server has had, by node id. Closed sessions stay (as
/// `Closed`) so that a late waiter still learns that its node is gone.
pub(crate) type Sessions = BTreeMap<NodeId, SessionView>;

/// Feeds a `NodeServer`'s events into a [`watch`] table, and optionally
/// sends the peer name of every closed session to a channel.
pub(crate) struct SessionWatcher {
    table: watch::Sender<Sessions>,
    closed: Option<mpsc::UnboundedSender<String>>,
}

impl SessionWatcher {
    pub(crate) fn new(
        table: watch::Sender<Sessions>,
        closed: Option<mpsc::UnboundedSender<String>>,
    ) -> Self {
        SessionWatcher { table, closed }
    }

    fn set(&self, ses: &NodeServerSessionInformation, phase: Phase) {
        let peer_name = ses.peer_name.as_ref().map(|name| name.name.clone());
        self.table.send_modify(|table| {
            let entry = table.entry(ses.node_id).or_insert_with(|| SessionView {
                peer_addr: ses.peer_addr.clone(),
                peer_name: None,
                is_server: ses.is_server,
                phase,
                session: ses.actor.get_cell(),
            });
            if peer_name.is_some() {
                entry.peer_name = peer_name.clone();
            }
            // A closed session never reopens: its node id is not reused.
            if entry.phase != Phase::Closed {
                entry.phase = phase;
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
        if let (Some(closed), Some(name)) = (&self.closed, &ses.peer_name) {
            let _ = closed.send(name.name.clone());
        }
    }
}
