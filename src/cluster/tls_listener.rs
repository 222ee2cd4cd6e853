//! The TLS listener of `procward node`: accepts TCP connections on the
//! node's address, runs each TLS handshake in a task of its own with a
//! deadline, and hands the secured stream to the node's `NodeServer`.
//!
//! ractor_cluster's own listener (`IncomingEncryptionMode::Tls`) runs the
//! handshake inside its accept loop, so one peer that connects and sends
//! nothing would stall every later connection for good. Here a handshake
//! holds only its own task, for at most [`HANDSHAKE_TIMEOUT`], and at most
//! [`MAX_HANDSHAKES`] run at once (further connections wait in the
//! kernel's backlog until one ends).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use ractor_cluster::{NetworkStream, NodeServerMessage};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// How long a peer may take to complete the TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many handshakes may be under way at once.
pub(crate) const MAX_HANDSHAKES: usize = 64;

/// After a failed `accept` (out of file descriptors, say), how long to
/// wait before the next, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A running listener; dropping it stops accepting and abandons the
/// handshakes under way (sessions already handed over are not touched).
pub(crate) struct TlsListener {
    task: JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsListener {
    /// Accepts on `listener` until dropped, giving every connection that
    /// completes the handshake with `acceptor` to `server` as an incoming
    /// session.
    pub(crate) fn start(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        server: ActorRef<NodeServerMessage>,
    ) -> Self {
        TlsListener {
            task: tokio::spawn(accept_loop(listener, acceptor, server)),
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    server: ActorRef<NodeServerMessage>,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    // Dropped with this task: aborting the loop aborts its handshakes.
    let mut handshakes = JoinSet::new();
    loop {
        while handshakes.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer_addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(%err, "cannot accept a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let (acceptor, server) = (acceptor.clone(), server.clone());
        handshakes.spawn(async move {
            handshake(stream, peer_addr, acceptor, server).await;
            drop(slot);
        });
    }
}

async fn handshake(
    stream: TcpStream,
    peer_addr: SocketAddr,
    acceptor: TlsAcceptor,
    server: ActorRef<NodeServerMessage>,
) {
    let local_addr = match stream.set_nodelay(true).and_then(|()| stream.local_addr()) {
        Ok(local_addr) => local_addr,
        Err(err) => {
            tracing::info!(%peer_addr, %err, "connection lost before the TLS handshake");
            return;
        }
    };
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            tracing::info!(%peer_addr, %err, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(%peer_addr, "no TLS handshake in time");
            return;
        }
    };
    let opened = server.cast(NodeServerMessage::ConnectionOpened {
        stream: Box::new(NetworkStream::TlsServer {
            peer_addr,
            local_addr,
            stream,
        }),
        is_server: true,
    });
    // A stopped server means the node is stopping: the stream just closes.
    if opened.is_err() {
        tracing::debug!(%peer_addr, "node server gone; dropping a TLS session");
    }
}
