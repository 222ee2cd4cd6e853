//! `procward node`: a registry that other nodes reach through
//! ractor_cluster.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ractor::{Actor, ActorRef};
use ractor_cluster::node::NodeConnectionMode;
use ractor_cluster::{IncomingEncryptionMode, NodeServer, NodeServerMessage};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio_rustls::TlsAcceptor;

use super::admission::HandshakeLimits;
use super::cookie::read_cookie_file;
use super::error::{RemoteError, RemoteErrorKind};
use super::events::{Authenticated, NodeEvent, NodeWatcher};
use super::gateway::{GatewayArgs, REGISTRY_GROUP, RemoteRegistryActor};
use super::listener::Listener;
use super::tls::{node_acceptor, refusing_acceptor};
use super::wire::MAX_FRAME_BYTES;
use crate::config::RegistryConfig;
use crate::messages::KillRequest;
use crate::registry::Registry;

/// Closed sessions not yet seen by every remote subscription's feed.
const CLOSED_PEERS_BACKLOG: usize = 256;

/// The owner key of the processes a client session spawns without asking
/// them to outlive it. `peer` is the client's full node name
/// (`name@hostname`). When that session closes, the node kills every
/// running process of this owner. Only a session that authenticated does
/// this: one that claims the name without proving the cookie does not.
pub fn session_owner(peer: &str) -> String {
    format!("procward.session:{peer}")
}

/// The settings of a node: where it listens, its name, its cookie, TLS,
/// its registry, and the limits on connections that have not
/// authenticated. `procward node` builds one from its command line.
///
/// Build it with [`NodeOptions::new`] and the setters; the fields stay
/// readable and writable, and new ones come with defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodeOptions {
    /// Address and port to listen on for other nodes and clients, e.g.
    /// 127.0.0.1:7400.
    pub listen: SocketAddr,

    /// This node's name; clients address spawns to it.
    pub name: String,

    /// File holding the cluster's magic cookie; must be owned by the user
    /// the node runs as, private to it (mode 600) and not empty.
    pub cookie_file: PathBuf,

    /// PEM file with this node's certificate (then any intermediates).
    /// With `tls_key`, the node accepts TLS sessions only (TLS 1.3).
    pub tls_cert: Option<PathBuf>,

    /// PEM file with the private key of `tls_cert`; must be owned by the
    /// user the node runs as and private to it (mode 600).
    pub tls_key: Option<PathBuf>,

    /// PEM file with the CA certificates that must sign client
    /// certificates: clients without one are refused (mutual TLS). Needs
    /// `tls_cert` and `tls_key`.
    pub tls_client_ca: Option<PathBuf>,

    /// The settings of the node's registry: its spawn policy and profiles
    /// (what `procward node --config` loads), caps and graces. The node
    /// turns on [`RegistryConfig::reap_orphans`] and
    /// [`RegistryConfig::guard`] whatever this says. [`NodeOptions::new`]
    /// starts from the defaults with the cap policy `Evict`.
    pub registry: RegistryConfig,

    /// How long a connection has, from accept to authentication (the TLS
    /// handshake included), before it is closed. 5 s by default.
    pub handshake_timeout: Duration,

    /// Connections not authenticated yet, in all; a connection past this
    /// closes the oldest pending one of the busiest address. 256 by
    /// default.
    pub max_pending_handshakes: u32,

    /// Connections not authenticated yet from one IP address; a connection
    /// past this closes that address's oldest pending one. 8 by default.
    pub max_pending_per_address: u32,
}

impl NodeOptions {
    /// A node listening on `listen` under `name`, with the cookie in
    /// `cookie_file`: plain TCP, the default registry settings and
    /// handshake limits.
    pub fn new(
        listen: SocketAddr,
        name: impl Into<String>,
        cookie_file: impl Into<PathBuf>,
    ) -> Self {
        let limits = HandshakeLimits::default();
        NodeOptions {
            listen,
            name: name.into(),
            cookie_file: cookie_file.into(),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            // A node evicts at the cap, as it always did: a remote client
            // is never kept waiting on another's processes.
            registry: RegistryConfig::default().cap_policy(crate::messages::CapPolicy::Evict),
            handshake_timeout: limits.timeout,
            max_pending_handshakes: u32::try_from(limits.total).unwrap_or(u32::MAX),
            max_pending_per_address: u32::try_from(limits.per_address).unwrap_or(u32::MAX),
        }
    }

    /// Accept TLS sessions only, with this certificate chain and key.
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls_cert = Some(cert.into());
        self.tls_key = Some(key.into());
        self
    }

    /// Refuse clients without a certificate that a CA of this PEM file
    /// signed (needs [`tls`](Self::tls)).
    pub fn tls_client_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.tls_client_ca = Some(ca.into());
        self
    }

    /// The settings of the node's registry (see [`registry`](Self::registry)).
    pub fn registry(mut self, config: RegistryConfig) -> Self {
        self.registry = config;
        self
    }

    /// The limits on connections that have not authenticated yet.
    pub fn handshake_limits(&self) -> HandshakeLimits {
        HandshakeLimits {
            timeout: self.handshake_timeout,
            per_address: self.max_pending_per_address as usize,
            total: self.max_pending_handshakes as usize,
        }
    }
}

fn internal(what: &str, err: impl std::fmt::Display) -> RemoteError {
    RemoteError::new(RemoteErrorKind::Internal, format!("{what}: {err}"))
}

/// Runs a node until `stop` completes: a registry (reaping orphans), its
/// gateway in [`REGISTRY_GROUP`], and a `NodeServer` fed by a listener on
/// `options.listen` that admits peers with the cookie; with `tls_cert` and
/// `tls_key`, over TLS only (and with `tls_client_ca`, only peers
/// presenting a certificate that CA signed). Until a connection
/// authenticates it is held to [`NodeOptions::handshake_limits`] and to
/// [`PRE_AUTH_FRAME_BYTES`](super::PRE_AUTH_FRAME_BYTES) /
/// [`PRE_AUTH_BYTES`](super::PRE_AUTH_BYTES), and nothing it sends has
/// any effect (docs/cluster.md, "Unauthenticated peers"). Every file is
/// checked before anything starts: a missing, unparsable, shared or
/// foreign-owned one (the cookie, the key) is an
/// [`InvalidRequest`](RemoteErrorKind::InvalidRequest) naming it, as is
/// `tls_cert` without `tls_key` or the other way round. Prints one line,
/// `procward node <name> listening on <addr>`, to stdout once peers can
/// connect. When `stop` completes, every process is killed and reaped
/// before this returns.
pub async fn run_node(
    options: NodeOptions,
    stop: impl Future<Output = ()>,
) -> Result<(), RemoteError> {
    let cookie = read_cookie_file(&options.cookie_file)?;
    let tls = tls_acceptor(&options)?;
    if options.name.is_empty() || options.name.contains('@') {
        return Err(RemoteError::new(
            RemoteErrorKind::InvalidRequest,
            "the node name must be non-empty and without `@`",
        ));
    }
    // The guard kills the node's trees if the node dies without this
    // function's cleanup (SIGKILL): the children never outlive the node.
    let config = options.registry.clone().reap_orphans(true).guard(true);
    let registry = Registry::start(config).await.map_err(RemoteError::from)?;
    let (closed_peers, _) = broadcast::channel(CLOSED_PEERS_BACKLOG);
    let gateway_args =
        GatewayArgs::new(registry.clone(), options.name.clone()).closed_peers(closed_peers.clone());
    let (gateway, _) = Actor::spawn(None, RemoteRegistryActor, gateway_args)
        .await
        .map_err(|err| internal("cannot start the gateway", err))?;
    ractor::pg::join(REGISTRY_GROUP.to_owned(), vec![gateway.get_cell()]);

    let served = serve(&options, cookie, tls, &registry, closed_peers, stop).await;

    // The node's children never outlive it.
    gateway.stop(Some("node stopping".to_owned()));
    let shut = registry.shutdown().await.map_err(RemoteError::from);
    served.and(shut)
}

/// The acceptor of a node given TLS files; `None` (plain TCP) without.
fn tls_acceptor(options: &NodeOptions) -> Result<Option<TlsAcceptor>, RemoteError> {
    let flags_error = |message: &str| RemoteError::new(RemoteErrorKind::InvalidRequest, message);
    match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => {
            node_acceptor(cert, key, options.tls_client_ca.as_deref()).map(Some)
        }
        (None, None) if options.tls_client_ca.is_some() => Err(flags_error(
            "--tls-client-ca needs --tls-cert and --tls-key",
        )),
        (None, None) => Ok(None),
        (Some(_), None) => Err(flags_error("--tls-cert needs --tls-key")),
        (None, Some(_)) => Err(flags_error("--tls-key needs --tls-cert")),
    }
}

async fn serve(
    options: &NodeOptions,
    cookie: String,
    tls: Option<TlsAcceptor>,
    registry: &Registry,
    closed_peers: broadcast::Sender<String>,
    stop: impl Future<Output = ()>,
) -> Result<(), RemoteError> {
    let cannot_listen = |err: &dyn std::fmt::Display| {
        RemoteError::new(
            RemoteErrorKind::Internal,
            format!("cannot listen on {}: {err}", options.listen),
        )
    };
    // The node's own Listener owns its address and hands every connection
    // to the NodeServer (see listener.rs for why). The listener that
    // ractor_cluster always starts is moved to an ephemeral loopback port
    // where it completes no handshake.
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|err| cannot_listen(&err))?;
    let loopback = match options.listen {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    let server = NodeServer::new(
        0,
        cookie,
        options.name.clone(),
        options.listen.ip().to_string(),
        Some(IncomingEncryptionMode::Tls(refusing_acceptor()?)),
        Some(NodeConnectionMode::Isolated),
    )
    .with_listen_addr(loopback)
    .with_max_inbound_frame_size(MAX_FRAME_BYTES);
    let (server, _) = Actor::spawn(None, server, ())
        .await
        .map_err(|err| cannot_listen(&err))?;
    let (events_tx, events) = mpsc::unbounded_channel();
    let subscribed = server.cast(NodeServerMessage::SubscribeToEvents {
        id: "procward.node".to_owned(),
        subscription: Box::new(NodeWatcher::new(events_tx)),
    });
    if let Err(err) = subscribed {
        server.stop(None);
        return Err(internal("cannot watch sessions", err));
    }
    let (authenticated_tx, authenticated) = mpsc::unbounded_channel();
    let keeper = tokio::spawn(keep_sessions(
        registry.clone(),
        events,
        authenticated_tx,
        closed_peers,
    ));
    let limits = options.handshake_limits();
    tracing::info!(
        tls = tls.is_some(),
        mutual = options.tls_client_ca.is_some(),
        timeout = ?limits.timeout,
        per_address = limits.per_address,
        total = limits.total,
        "accepting sessions"
    );
    let front = Listener::start(listener, tls, limits, server.clone(), authenticated);
    println!(
        "procward node {} listening on {}",
        options.name, options.listen
    );
    stop.await;
    drop(front);
    stop_server(server).await;
    keeper.abort();
    Ok(())
}

async fn stop_server(server: ActorRef<NodeServerMessage>) {
    let _ = server
        .stop_and_wait(
            Some("node stopping".to_owned()),
            Some(Duration::from_secs(2)),
        )
        .await;
}

/// Keeps the node's table of authenticated sessions: tells the listener
/// which connections authenticated, and when an authenticated client
/// session closes, ends its subscriptions' feeds and kills what it spawned
/// without asking to outlive it. A session that never authenticated
/// closes without effect, whatever name it claimed.
async fn keep_sessions(
    registry: Registry,
    mut events: mpsc::UnboundedReceiver<NodeEvent>,
    authenticated: mpsc::UnboundedSender<String>,
    closed_peers: broadcast::Sender<String>,
) {
    let mut sessions = Authenticated::default();
    while let Some(event) = events.recv().await {
        let peer = match event {
            NodeEvent::Authenticated {
                node_id,
                label,
                peer,
            } => {
                sessions.insert(node_id, peer.clone());
                tracing::info!(%peer, %label, open = sessions.len(), "session authenticated");
                // A closed receiver means the listener is gone (stopping).
                let _ = authenticated.send(label);
                continue;
            }
            NodeEvent::Closed { node_id } => match sessions.close(node_id) {
                Some(peer) => peer,
                None => continue,
            },
        };
        // No feed listening is not an error.
        let _ = closed_peers.send(peer.clone());
        let registry = registry.clone();
        tokio::spawn(async move {
            let owner = session_owner(&peer);
            match registry.kill_owner(owner, KillRequest::default()).await {
                Ok(killed) if !killed.is_empty() => {
                    tracing::info!(%peer, killed = killed.len(), "session closed; killed its processes");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(%peer, %err, "session closed; kill_owner failed"),
            }
        });
    }
}
