//! [`ClusterClient`]: the registry handle API against registries on other
//! nodes.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use std::time::Duration;

use bytes::Bytes;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorId, ActorRef, RpcReplyPort};
use ractor_cluster::IncomingEncryptionMode;
use ractor_cluster::node::NodeConnectionMode;
use ractor_cluster::{ClientConnectErr, NodeId, NodeServer, NodeServerMessage};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::error::{RemoteError, RemoteErrorKind};
use super::events::{Phase, SessionView, SessionWatcher, Sessions};
use super::gateway::{NodeInfo, REGISTRY_GROUP, RemoteRegistryMsg};
use super::node::session_owner;
use super::tls::{ClientTls, refusing_acceptor};
use super::wire::{MAX_FRAME_BYTES, Wire};
use crate::messages::{
    Answer, HandleId, HandleSummary, KillRequest, ListFilter, ReadChunk, ReadRequest, Request,
    Snapshot, SpawnRequest, WaitOutcome,
};

/// A handle on some node of the cluster: the node's name and the handle
/// id there. Ids are unique per node only; the pair is unique in the
/// cluster. Displays as `node/psh-…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RemoteHandle {
    /// The node's name (`procward node --name`).
    pub node: String,
    /// The handle id on that node.
    pub id: HandleId,
}

impl fmt::Display for RemoteHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.node, self.id)
    }
}

/// A snapshot together with the remote handle it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RemoteSnapshot {
    /// Where the process runs.
    pub handle: RemoteHandle,
    /// Its state.
    pub snapshot: Snapshot,
}

/// Where a spawn goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// On the connected node of this name.
    Node(String),
    /// On the connected node running the fewest processes now (each node
    /// is asked; ties go to the first name in order).
    LeastLoaded,
}

/// How a [`ClusterClient`] joins the cluster.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The cluster's magic cookie.
    pub cookie: String,
    /// This client's node name; it must be unique among the peers of every
    /// node it connects to. The default is made unique from the pid and
    /// the time.
    pub name: String,
    /// Where the client's own `NodeServer` listens (ractor_cluster needs
    /// one); the default is an ephemeral port on 127.0.0.1. The client
    /// accepts no session on it: every inbound connection gets a TLS
    /// alert, whatever it sends, so a stranger who finds the port starts
    /// nothing.
    pub listen: SocketAddr,
    /// How long [`ClusterClient::connect`] waits for authentication and
    /// for the node's registry to show up.
    pub connect_timeout: Duration,
    /// After a call ends without an answer, how long to wait for the
    /// session to report closing before calling the node unavailable
    /// anyway.
    pub no_reply_grace: Duration,
    /// With `Some`, [`ClusterClient::connect`] opens TLS sessions, which
    /// only nodes started with `--tls-cert`/`--tls-key` accept; with
    /// `None` (the default), plain TCP ones, which only nodes without
    /// them accept.
    pub tls: Option<ClientTls>,
}

impl ClientOptions {
    /// Options with `cookie` and defaults for the rest.
    pub fn new(cookie: impl Into<String>) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        ClientOptions {
            cookie: cookie.into(),
            name: format!("procward-client-{}-{nanos:x}", std::process::id()),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            connect_timeout: Duration::from_secs(5),
            no_reply_grace: Duration::from_millis(500),
            tls: None,
        }
    }

    /// Connects to nodes over TLS (see [`ClientTls`]).
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the client's node name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

/// One connected node.
#[derive(Debug, Clone)]
pub(super) struct NodeLink {
    node_id: NodeId,
    pub(super) gateway: ActorRef<RemoteRegistryMsg>,
}

#[derive(Debug)]
struct Inner {
    server: ActorRef<NodeServerMessage>,
    sessions: watch::Receiver<Sessions>,
    /// The name table: read with an atomic load; a connect publishes a
    /// new table (`rcu`), so no lock is ever held.
    nodes: ArcSwap<BTreeMap<String, NodeLink>>,
    full_name: String,
    options: ClientOptions,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.server.stop(Some("cluster client dropped".to_owned()));
    }
}

/// A handle to registries on other nodes, with the methods of
/// [`Registry`](crate::Registry) (answers are `Result<_, RemoteError>`).
/// Cloning it is cheap; the client leaves the cluster when the last clone
/// is dropped (or on [`shutdown`](Self::shutdown)).
///
/// # Failure semantics
///
/// Every call races the node's session: when the node disconnects or
/// dies, pending calls to it (a long `wait` included) fail at once with
/// [`RemoteErrorKind::NodeUnavailable`]. Processes spawned with
/// [`spawn`](Self::spawn) are killed by their node when this client's
/// session closes; those spawned with
/// [`spawn_detached`](Self::spawn_detached) keep running.
#[derive(Debug, Clone)]
pub struct ClusterClient {
    inner: Arc<Inner>,
}

impl ClusterClient {
    /// Starts the client's own `NodeServer` (it connects to no node yet).
    pub async fn start(options: ClientOptions) -> Result<Self, RemoteError> {
        let hostname = options.listen.ip().to_string();
        let server = NodeServer::new(
            options.listen.port(),
            options.cookie.clone(),
            options.name.clone(),
            hostname.clone(),
            // Nodes never connect back: the client's listener refuses
            // every handshake, so no stranger gets a session here.
            Some(IncomingEncryptionMode::Tls(refusing_acceptor()?)),
            Some(NodeConnectionMode::Isolated),
        )
        .with_listen_addr(options.listen.ip())
        .with_max_inbound_frame_size(MAX_FRAME_BYTES);
        let (server, _) = Actor::spawn(None, server, ()).await.map_err(|err| {
            RemoteError::new(
                RemoteErrorKind::Connect,
                format!("cannot start the client's node server: {err}"),
            )
        })?;
        let (table, sessions) = watch::channel(Sessions::new());
        let subscribed = server.cast(NodeServerMessage::SubscribeToEvents {
            id: "procward.client".to_owned(),
            subscription: Box::new(SessionWatcher::new(table)),
        });
        if let Err(err) = subscribed {
            server.stop(None);
            return Err(RemoteError::new(
                RemoteErrorKind::Connect,
                format!("cannot watch sessions: {err}"),
            ));
        }
        Ok(ClusterClient {
            inner: Arc::new(Inner {
                server,
                sessions,
                nodes: ArcSwap::from_pointee(BTreeMap::new()),
                full_name: format!("{}@{hostname}", options.name),
                options,
            }),
        })
    }

    /// This client's full node name (`name@host`), as nodes see it.
    pub fn full_name(&self) -> &str {
        &self.inner.full_name
    }

    /// The owner key a node gives to what this client spawns with
    /// [`spawn`](Self::spawn).
    pub fn session_owner(&self) -> String {
        session_owner(&self.inner.full_name)
    }

    /// Connects to the node at `address`, waits until the session is
    /// authenticated and the node's registry is visible, and returns the
    /// node's name.
    ///
    /// With [`ClientOptions::tls`], the session is TLS: the node's
    /// certificate must be signed by the trusted CA and name the host part
    /// of `address` (an IP address or a DNS name), unless
    /// [`ClientTls::server_name`] says otherwise.
    ///
    /// Fails with [`RemoteErrorKind::Connect`] if the address cannot be
    /// reached, the TLS handshake fails (an untrusted or misnamed node
    /// certificate, a plain node), the node refuses the session (a wrong
    /// cookie, a client certificate it does not trust, or a plain client
    /// at a TLS node closes it), or nothing is ready within the connect
    /// timeout, which bounds the whole call.
    pub async fn connect(&self, address: impl Into<String>) -> Result<String, RemoteError> {
        let address = address.into();
        let connect_err = |why: String| {
            RemoteError::new(
                RemoteErrorKind::Connect,
                format!("cannot connect to {address}: {why}"),
            )
        };
        let deadline = tokio::time::Instant::now() + self.inner.options.connect_timeout;
        let timed_out =
            || connect_err("no authenticated session in time (is it a procward node?)".to_owned());
        let tls = self.inner.options.tls.as_ref();
        let resolved = tokio::time::timeout_at(deadline, tokio::net::lookup_host(address.as_str()))
            .await
            .map_err(|_| timed_out())?
            .map_err(|err| connect_err(err.to_string()))?
            .next()
            .ok_or_else(|| connect_err("the address resolves to nothing".to_owned()))?;
        let peer = resolved.to_string();
        let mut sessions = self.inner.sessions.clone();
        let known: Vec<NodeId> = sessions.borrow_and_update().keys().copied().collect();
        // Neither the TCP connect nor the TLS handshake has a timeout of
        // its own: a peer that never answers would hold `connect` forever.
        let opened = match tls {
            Some(tls) => {
                let name = tls.server_name_for(&address).map_err(connect_err)?;
                let open = ractor_cluster::client_connect_enc(
                    &self.inner.server,
                    resolved,
                    tls.connector(),
                    name,
                );
                tokio::time::timeout_at(deadline, open).await
            }
            None => {
                let open = ractor_cluster::client_connect(&self.inner.server, resolved);
                tokio::time::timeout_at(deadline, open).await
            }
        };
        match opened {
            Ok(Ok(())) => {}
            Ok(Err(ClientConnectErr::Encryption(err))) => {
                return Err(connect_err(format!("TLS handshake failed: {err}")));
            }
            Ok(Err(err)) => return Err(connect_err(err.to_string())),
            Err(_) => return Err(timed_out()),
        }

        let ours = |id: &NodeId, ses: &SessionView| {
            !known.contains(id)
                && !ses.is_server
                && ses.peer_addr == peer
                && ses.phase != Phase::Opened
        };
        // The table's read guard is not `Send`: take what is needed out of
        // it before the next await.
        let settled = tokio::time::timeout_at(
            deadline,
            sessions.wait_for(|table| table.iter().any(|(id, ses)| ours(id, ses))),
        )
        .await
        .map(|waited| {
            waited.map(|table| {
                table
                    .iter()
                    .find(|(id, ses)| ours(id, ses))
                    .map(|(id, ses)| (*id, ses.phase, ses.session.clone()))
            })
        });
        let (node_id, phase, session) = match settled {
            Ok(Ok(found)) => found.ok_or_else(|| connect_err("the session vanished".to_owned()))?,
            Ok(Err(_)) => return Err(connect_err("the client is shutting down".to_owned())),
            Err(_) => return Err(timed_out()),
        };
        if phase == Phase::Closed {
            let why = match tls {
                Some(tls) if tls.has_identity() => {
                    "wrong cookie, a name clash, or the node does not trust this client certificate"
                }
                Some(_) => "wrong cookie, a name clash, or the node requires a client certificate",
                None => "wrong cookie, a name clash, or the node requires TLS",
            };
            return Err(connect_err(format!("the node closed the session ({why})")));
        }
        let session =
            session.ok_or_else(|| connect_err("the session closed at once".to_owned()))?;

        let gateway = loop {
            if let Some(gateway) = gateway_of(&session, node_id) {
                break gateway;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(connect_err(format!(
                    "the node offers no `{REGISTRY_GROUP}` registry"
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let link = NodeLink { node_id, gateway };
        let info: NodeInfo = self.call_link("?", &link, RemoteRegistryMsg::Info).await?;
        self.inner.nodes.rcu(|nodes| {
            let mut nodes = BTreeMap::clone(nodes);
            nodes.insert(info.node.clone(), link.clone());
            nodes
        });
        Ok(info.node)
    }

    /// The names of the nodes connected now (closed sessions are dropped).
    pub fn nodes(&self) -> Vec<String> {
        let sessions = self.inner.sessions.borrow().clone();
        self.inner
            .nodes
            .load()
            .iter()
            .filter(|(_, link)| {
                sessions
                    .get(&link.node_id)
                    .is_some_and(|ses| ses.phase == Phase::Ready)
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Name, running count and handle count of one node.
    pub async fn info(&self, node: &str) -> Result<NodeInfo, RemoteError> {
        self.call(node, RemoteRegistryMsg::Info).await
    }

    /// Starts a process on a node; it is killed when this client's session
    /// to that node closes. Its owner key is
    /// [`session_owner`](Self::session_owner) (any owner in `request` is
    /// replaced).
    pub async fn spawn(
        &self,
        mut request: SpawnRequest,
        placement: Placement,
    ) -> Result<RemoteSnapshot, RemoteError> {
        request.owner = Some(self.session_owner());
        self.spawn_detached(request, placement).await
    }

    /// Starts a process on a node that keeps running when this client goes
    /// away; the request's owner (if any) is kept.
    pub async fn spawn_detached(
        &self,
        request: SpawnRequest,
        placement: Placement,
    ) -> Result<RemoteSnapshot, RemoteError> {
        let node = match placement {
            Placement::Node(node) => node,
            Placement::LeastLoaded => self.least_loaded().await?,
        };
        let snapshot = self
            .execute(&node, Request::Spawn(request))
            .await?
            .into_snapshot()?;
        Ok(RemoteSnapshot {
            handle: RemoteHandle {
                node,
                id: snapshot.handle_id,
            },
            snapshot,
        })
    }

    /// A snapshot now; never waits for the process.
    pub async fn poll(&self, handle: &RemoteHandle) -> Result<Snapshot, RemoteError> {
        let request = Request::Poll { id: handle.id };
        Ok(self.execute(&handle.node, request).await?.into_snapshot()?)
    }

    /// Waits until the handle is terminal (or `timeout` passes: then a
    /// running snapshot with `timed_out`). Fails with
    /// [`RemoteErrorKind::NodeUnavailable`] as soon as the node goes away.
    pub async fn wait(
        &self,
        handle: &RemoteHandle,
        timeout: Option<Duration>,
    ) -> Result<WaitOutcome, RemoteError> {
        let request = Request::Wait {
            id: handle.id,
            timeout,
        };
        Ok(self.execute(&handle.node, request).await?.into_waited()?)
    }

    /// Kills the tree and answers the terminal snapshot.
    pub async fn kill(
        &self,
        handle: &RemoteHandle,
        request: KillRequest,
    ) -> Result<Snapshot, RemoteError> {
        let request = Request::Kill {
            id: handle.id,
            request,
        };
        Ok(self.execute(&handle.node, request).await?.into_snapshot()?)
    }

    /// Forgets the handle (killing the tree first if it runs); answers
    /// whether the node knew it.
    pub async fn release(&self, handle: &RemoteHandle) -> Result<bool, RemoteError> {
        let request = Request::Release { id: handle.id };
        Ok(self.execute(&handle.node, request).await?.into_released()?)
    }

    /// Reads one stream from an offset on (the way to tail remote output).
    pub async fn read(
        &self,
        handle: &RemoteHandle,
        request: ReadRequest,
    ) -> Result<ReadChunk, RemoteError> {
        let request = Request::Read {
            id: handle.id,
            request,
        };
        Ok(self.execute(&handle.node, request).await?.into_read()?)
    }

    /// Writes bytes to the piped stdin of a remote process (spawned with
    /// [`Stdin::Pipe`](crate::Stdin::Pipe)); returns once they are in the
    /// pipe. Writes from one caller apply in order.
    pub async fn write(
        &self,
        handle: &RemoteHandle,
        bytes: impl Into<Bytes>,
    ) -> Result<(), RemoteError> {
        let request = Request::Write {
            id: handle.id,
            bytes: bytes.into(),
        };
        Ok(self.execute(&handle.node, request).await?.into_done()?)
    }

    /// Closes the piped stdin of a remote process after the writes sent
    /// before.
    pub async fn close_stdin(&self, handle: &RemoteHandle) -> Result<(), RemoteError> {
        let request = Request::CloseStdin { id: handle.id };
        Ok(self.execute(&handle.node, request).await?.into_done()?)
    }

    /// Stops a remote process tree (SIGSTOP to its group); see
    /// [`Registry::pause`](crate::Registry::pause).
    pub async fn pause(&self, handle: &RemoteHandle) -> Result<Snapshot, RemoteError> {
        let request = Request::Pause { id: handle.id };
        Ok(self.execute(&handle.node, request).await?.into_snapshot()?)
    }

    /// Continues a paused remote process tree (SIGCONT).
    pub async fn resume(&self, handle: &RemoteHandle) -> Result<Snapshot, RemoteError> {
        let request = Request::Resume { id: handle.id };
        Ok(self.execute(&handle.node, request).await?.into_snapshot()?)
    }

    /// The handles of one node that pass `filter`, oldest first.
    pub async fn list_on(
        &self,
        node: &str,
        filter: ListFilter,
    ) -> Result<Vec<HandleSummary>, RemoteError> {
        Ok(self
            .execute(node, Request::List(filter))
            .await?
            .into_listed()?)
    }

    /// The handles of every connected node that pass `filter`, by node
    /// name, then oldest first. The nodes are asked at once. Fails if any
    /// node fails.
    pub async fn list(
        &self,
        filter: ListFilter,
    ) -> Result<Vec<(RemoteHandle, HandleSummary)>, RemoteError> {
        let answers = self
            .on_every_node(move |client, node| {
                let filter = filter.clone();
                async move { client.list_on(&node, filter).await }
            })
            .await;
        let mut all = Vec::new();
        for (node, summaries) in answers {
            for summary in summaries? {
                let handle = RemoteHandle {
                    node: node.clone(),
                    id: summary.handle_id,
                };
                all.push((handle, summary));
            }
        }
        Ok(all)
    }

    /// Kills every running tree of `owner` on every connected node, on all
    /// nodes at once, and answers their terminal snapshots. Fails if any
    /// node fails (the other nodes' kills still happen).
    pub async fn kill_owner(
        &self,
        owner: impl Into<String>,
        request: KillRequest,
    ) -> Result<Vec<RemoteSnapshot>, RemoteError> {
        let owner = owner.into();
        let answers = self
            .on_every_node(move |client, node| {
                let request = Request::KillOwner {
                    owner: owner.clone(),
                    request,
                    close: false,
                };
                async move { Ok(client.execute(&node, request).await?.into_killed()?) }
            })
            .await;
        let mut all = Vec::new();
        for (node, killed) in answers {
            let killed: Vec<Snapshot> = killed?;
            all.extend(killed.into_iter().map(|snapshot| RemoteSnapshot {
                handle: RemoteHandle {
                    node: node.clone(),
                    id: snapshot.handle_id,
                },
                snapshot,
            }));
        }
        Ok(all)
    }

    /// Releases every handle of `owner` on every connected node (killing
    /// its running trees first), on all nodes at once, and answers how
    /// many were released. Fails if any node fails (the other nodes'
    /// releases still happen).
    pub async fn release_owner(&self, owner: impl Into<String>) -> Result<usize, RemoteError> {
        let owner = owner.into();
        let answers = self
            .on_every_node(move |client, node| {
                let request = Request::ReleaseOwner {
                    owner: owner.clone(),
                };
                async move {
                    Ok(client
                        .execute(&node, request)
                        .await?
                        .into_released_owner()?)
                }
            })
            .await;
        let mut released = 0;
        for (_, count) in answers {
            released += count?;
        }
        Ok(released)
    }

    /// Runs any registry operation on the node named `node`, as
    /// [`Registry::execute`](crate::Registry::execute) does locally: every
    /// method above is this call with its [`Request`], unpacked. For the
    /// operations without a method of their own here (`counts`,
    /// `close_owner` as [`Request::KillOwner`] with `close`,
    /// `reopen_owner`), and for callers that hold requests as data. A
    /// `Spawn` runs as with [`spawn_detached`](Self::spawn_detached): its
    /// owner is kept.
    ///
    /// The node answers with the [`Answer`] variant the request's docs
    /// name; a node that does not know the request (a peer of an older
    /// version) answers [`RemoteErrorKind::Protocol`].
    pub async fn execute(&self, node: &str, request: Request) -> Result<Answer, RemoteError> {
        self.call(node, |tx| RemoteRegistryMsg::Execute(Wire::ok(request), tx))
            .await
    }

    /// The gateway of the connected node named `node`, for a ractor user
    /// who sends [`RemoteRegistryMsg`]s itself. Calls on it are not raced
    /// against the session as this client's methods are: give them a
    /// timeout.
    pub fn gateway(&self, node: &str) -> Result<ActorRef<RemoteRegistryMsg>, RemoteError> {
        Ok(self.link(node)?.gateway)
    }

    /// Leaves the cluster: closes every session (so nodes kill what this
    /// client spawned with [`spawn`](Self::spawn)) and stops the client's
    /// node server. Other clones then fail with `NodeUnavailable`.
    pub async fn shutdown(&self) -> Result<(), RemoteError> {
        self.inner
            .server
            .stop_and_wait(Some("cluster client shutdown".to_owned()), None)
            .await
            .map_err(|err| RemoteError::new(RemoteErrorKind::Internal, err.to_string()))
    }

    async fn least_loaded(&self) -> Result<String, RemoteError> {
        let answers = self
            .on_every_node(|client, node| async move { client.info(&node).await })
            .await;
        let mut best: Option<(usize, String)> = None;
        for (node, info) in answers {
            // A node that fails to answer is skipped: placement goes to the
            // nodes that can take the spawn. Ties go to the first name.
            let Ok(info) = info else {
                continue;
            };
            if best
                .as_ref()
                .is_none_or(|(running, _)| info.running < *running)
            {
                best = Some((info.running, node));
            }
        }
        best.map(|(_, node)| node).ok_or_else(|| {
            RemoteError::new(
                RemoteErrorKind::NoNodes,
                "no connected node can take a spawn",
            )
        })
    }

    /// Runs `call` against every connected node at once (each in a task of
    /// its own, so one slow node does not hold up the others), and answers
    /// by node name in order. Dropping the future leaves the calls running
    /// to their end; only their answers are lost.
    async fn on_every_node<T, F, Fut>(&self, call: F) -> Vec<(String, Result<T, RemoteError>)>
    where
        T: Send + 'static,
        F: Fn(ClusterClient, String) -> Fut,
        Fut: Future<Output = Result<T, RemoteError>> + Send + 'static,
    {
        let calls: Vec<_> = self
            .nodes()
            .into_iter()
            .map(|node| {
                let task = tokio::spawn(call(self.clone(), node.clone()));
                (node, task)
            })
            .collect();
        let mut answers = Vec::with_capacity(calls.len());
        for (node, task) in calls {
            let answer = task.await.unwrap_or_else(|err| {
                Err(RemoteError::new(
                    RemoteErrorKind::Internal,
                    format!("the call to node `{node}` failed: {err}"),
                ))
            });
            answers.push((node, answer));
        }
        answers
    }

    async fn call<T: Send + 'static>(
        &self,
        node: &str,
        build: impl FnOnce(RpcReplyPort<Wire<T>>) -> RemoteRegistryMsg,
    ) -> Result<T, RemoteError> {
        let link = self.link(node)?;
        self.call_link(node, &link, build).await
    }

    pub(super) fn link(&self, node: &str) -> Result<NodeLink, RemoteError> {
        self.inner.nodes.load().get(node).cloned().ok_or_else(|| {
            RemoteError::new(
                RemoteErrorKind::UnknownNode,
                format!("no connected node is named `{node}`"),
            )
        })
    }

    /// Sends one call to a node's gateway and races it against the node's
    /// session closing.
    pub(super) async fn call_link<T: Send + 'static>(
        &self,
        node: &str,
        link: &NodeLink,
        build: impl FnOnce(RpcReplyPort<Wire<T>>) -> RemoteRegistryMsg,
    ) -> Result<T, RemoteError> {
        let mut sessions = self.inner.sessions.clone();
        let node_id = link.node_id;
        let closed = |table: &Sessions| {
            table
                .get(&node_id)
                .is_none_or(|ses| ses.phase == Phase::Closed)
        };
        if closed(&sessions.borrow_and_update()) {
            return Err(RemoteError::node_unavailable(node, "its session is closed"));
        }
        let call = link.gateway.call(build, None);
        let answer = tokio::select! {
            answer = call => answer,
            _ = sessions.wait_for(closed) => {
                return Err(RemoteError::node_unavailable(node, "its session closed"));
            }
        };
        match answer {
            Ok(CallResult::Success(wire)) => wire.into_result(),
            Ok(CallResult::Timeout | CallResult::SenderError) => {
                // The reply port was dropped: usually the session is going
                // down; give it a moment to say so.
                let grace = self.inner.options.no_reply_grace;
                let _ = tokio::time::timeout(grace, sessions.wait_for(closed)).await;
                Err(RemoteError::node_unavailable(node, "it did not answer"))
            }
            Err(err) => Err(RemoteError::node_unavailable(node, err)),
        }
    }
}

/// The gateway that the node behind `session` put into
/// [`REGISTRY_GROUP`], if it is there yet.
///
/// Node ids are counted per `NodeServer`, so with several clients in one
/// process two sessions can have the same node id, and their nodes'
/// gateways the same remote pid: the same `ActorId`. ractor's process
/// groups keep one cell per `ActorId`, so the group's cell may be another
/// client's stub, routed through that client's session. The stub that
/// belongs to this session is a child of the session actor; take that one.
fn gateway_of(session: &ActorCell, node_id: NodeId) -> Option<ActorRef<RemoteRegistryMsg>> {
    let stubs: Vec<ActorCell> = session
        .get_children()
        .into_iter()
        .filter(
            |cell| matches!(cell.get_id(), ActorId::Remote { node_id: id, .. } if id == node_id),
        )
        .collect();
    let listed: Vec<ActorId> = ractor::pg::get_members(&REGISTRY_GROUP.to_owned())
        .iter()
        .map(ActorCell::get_id)
        .collect();
    let chosen = match stubs.len() {
        0 => None,
        // A node exposes only its gateway, so at connect time it is the
        // session's only stub even if another client's has left the group.
        1 => stubs.into_iter().next(),
        _ => stubs
            .into_iter()
            .find(|cell| listed.contains(&cell.get_id())),
    };
    chosen.map(ActorRef::from)
}
