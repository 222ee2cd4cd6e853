//! The listener of `procward node`: accepts TCP connections on the node's
//! address, admits them through the [admission table](super::admission),
//! runs the TLS handshake (with TLS) in a task of its own, and hands each
//! connection to the node's `NodeServer` with its read side gated until
//! the session authenticates ([`GatedRead`]).
//!
//! ractor_cluster's own listener runs a TLS handshake inside its accept
//! loop (one silent peer stalls every later connection), starts a session
//! for every plain connection at once, and bounds neither. The node
//! therefore moves that listener to an ephemeral loopback port where it
//! completes no handshake at all (see `tls::refusing_acceptor`), and every
//! session comes through here.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use ractor::ActorRef;
use ractor_cluster::{BoxRead, BoxWrite, ClusterBidiStream, NodeServerMessage};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;

use super::admission::{HandshakeLimits, Pending};
use super::pre_auth::{GatedRead, Verdict};

/// After a failed `accept` (out of file descriptors, say), how long to
/// wait before the next, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A running listener; dropping it stops accepting, abandons the TLS
/// handshakes under way and closes every connection that has not
/// authenticated yet (sessions already authenticated are not touched).
pub(crate) struct Listener {
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Accepts on `listener` until dropped, handing every admitted
    /// connection (after the TLS handshake with `tls`, if given) to
    /// `server`. `authenticated` carries the label of every session that
    /// authenticated (`NodeServerSessionInformation::peer_addr`).
    pub(crate) fn start(
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        limits: HandshakeLimits,
        server: ActorRef<NodeServerMessage>,
        authenticated: mpsc::UnboundedReceiver<String>,
    ) -> Self {
        let accept = AcceptLoop {
            listener,
            tls,
            limits,
            server,
        };
        Listener {
            task: tokio::spawn(accept.run(authenticated)),
        }
    }
}

struct AcceptLoop {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: HandshakeLimits,
    server: ActorRef<NodeServerMessage>,
}

impl AcceptLoop {
    async fn run(self, mut authenticated: mpsc::UnboundedReceiver<String>) {
        let mut pending = Pending::new(self.limits);
        // Dropped with this task: aborting the loop aborts its handshakes.
        let mut handshakes = JoinSet::new();
        loop {
            while handshakes.try_join_next().is_some() {}
            let accepted = tokio::select! {
                label = authenticated.recv() => match label {
                    Some(label) => {
                        pending.authenticated(&label);
                        continue;
                    }
                    None => return,
                },
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer_addr) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let admitted = pending.admit(peer_addr);
            if let Some(evicted) = &admitted.evicted {
                tracing::info!(
                    %evicted,
                    for_ = %admitted.label,
                    pending = pending.len(),
                    "too many pending connections; closed the oldest"
                );
            }
            let deadline = Box::pin(tokio::time::sleep(self.limits.timeout));
            let connection = Connection {
                label: admitted.label,
                peer_addr,
                verdict: admitted.verdict,
                deadline,
            };
            match &self.tls {
                None => connection.open_raw(stream, &self.server),
                Some(acceptor) => {
                    let (acceptor, server) = (acceptor.clone(), self.server.clone());
                    handshakes.spawn(connection.open_tls(stream, acceptor, server));
                }
            }
        }
    }
}

/// An admitted connection on its way to the `NodeServer`.
struct Connection {
    label: String,
    peer_addr: SocketAddr,
    verdict: Verdict,
    deadline: Pin<Box<Sleep>>,
}

impl Connection {
    fn open_raw(self, stream: TcpStream, server: &ActorRef<NodeServerMessage>) {
        if let Err(err) = stream.set_nodelay(true) {
            tracing::info!(peer_addr = %self.peer_addr, %err, "connection lost before its session");
            return;
        }
        let (read, write) = stream.into_split();
        self.hand_over(Box::new(read), Box::new(write), server);
    }

    async fn open_tls(
        mut self,
        stream: TcpStream,
        acceptor: TlsAcceptor,
        server: ActorRef<NodeServerMessage>,
    ) {
        let peer_addr = self.peer_addr;
        if let Err(err) = stream.set_nodelay(true) {
            tracing::info!(%peer_addr, %err, "connection lost before the TLS handshake");
            return;
        }
        let stream = tokio::select! {
            done = acceptor.accept(stream) => match done {
                Ok(stream) => stream,
                Err(err) => {
                    tracing::info!(%peer_addr, %err, "TLS handshake failed");
                    return;
                }
            },
            () = self.deadline.as_mut() => {
                tracing::info!(%peer_addr, "no TLS handshake in time");
                return;
            }
            // Before authentication only a dropped sender can answer.
            _ = &mut self.verdict => {
                tracing::info!(%peer_addr, "evicted during the TLS handshake");
                return;
            }
        };
        let (read, write) = tokio::io::split(stream);
        self.hand_over(Box::new(read), Box::new(write), &server);
    }

    fn hand_over(self, read: BoxRead, write: BoxWrite, server: &ActorRef<NodeServerMessage>) {
        let stream = Gated {
            label: self.label,
            read: Box::new(GatedRead::new(read, self.verdict, self.deadline)),
            write,
        };
        let opened = server.cast(NodeServerMessage::ConnectionOpenedExternal {
            stream: Box::new(stream),
            is_server: true,
        });
        // A stopped server means the node is stopping: the stream just closes.
        if opened.is_err() {
            tracing::debug!(peer_addr = %self.peer_addr, "node server gone; dropping a connection");
        }
    }
}

/// A connection as ractor_cluster takes it, labelled so that the node can
/// tell which session authenticated.
struct Gated {
    label: String,
    read: BoxRead,
    write: BoxWrite,
}

impl ClusterBidiStream for Gated {
    fn split(self: Box<Self>) -> (BoxRead, BoxWrite) {
        (self.read, self.write)
    }

    fn peer_label(&self) -> Option<String> {
        Some(self.label.clone())
    }
}
