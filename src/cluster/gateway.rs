//! [`RemoteRegistryActor`]: the gateway that lets other nodes use a local
//! registry, and [`RemoteRegistryMsg`], the serializable messages it answers.

use std::collections::HashMap;
use std::future::Future;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use super::error::{RemoteError, RemoteErrorKind};
use super::feed::{Feed, FeedBatch, FeedRequest, FeedStarted, NextArgs, SubscribeArgs};
use super::wire::Wire;
use crate::messages::{Answer, Request, Subscriber};
use crate::registry::Registry;

/// The ractor process group that every node's gateway joins, across the
/// cluster.
pub const REGISTRY_GROUP: &str = "procward.registry";

/// What a gateway says about its node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NodeInfo {
    /// The node's name as given to `procward node --name`.
    pub node: String,
    /// How many processes are running there now.
    pub running: usize,
    /// How many handles (running or finished, receipts included) it holds.
    pub handles: usize,
    /// How many remote subscriptions' feeds it serves now.
    #[serde(default)]
    pub feeds: usize,
}

/// A message to a node's gateway. Every payload is plain data, so
/// ractor_cluster can carry it between nodes; every answer is a `Result`
/// with a [`RemoteError`]. The registry's operations all travel as one
/// [`Execute`](Self::Execute); the others are the gateway's own (its
/// node's info, remote subscriptions' feeds).
///
/// The gateway never waits inside a handler: each request runs in a task
/// of its own, so a pending `wait` never delays anything else.
// Ractor boxes every message it delivers; boxing `Execute` would only add
// an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, RactorClusterMessage)]
pub enum RemoteRegistryMsg {
    /// The node's name and how many processes it runs (for placement).
    #[rpc]
    Info(RpcReplyPort<Wire<NodeInfo>>),
    /// Runs one registry operation with [`Registry::execute`]: every
    /// operation crosses the cluster as this one message. A request that
    /// does not decode (a peer of another version, a corrupted frame) is
    /// answered with a [`RemoteErrorKind::Protocol`] error.
    #[rpc]
    Execute(Wire<Request>, RpcReplyPort<Wire<Answer>>),
    /// Starts a feed of the handle's live output and exit event for a
    /// subscriber on another node; pull it with [`Next`](Self::Next). See
    /// the `feed` module docs for how its window is acknowledged.
    #[rpc]
    Subscribe(Wire<SubscribeArgs>, RpcReplyPort<Wire<FeedStarted>>),
    /// Acknowledges what a feed's puller has received and answers with the
    /// next events, as soon as there is one.
    #[rpc]
    Next(Wire<NextArgs>, RpcReplyPort<Wire<FeedBatch>>),
    /// Ends a feed (the subscriber is done with it). Unknown feeds are
    /// ignored.
    Unsubscribe(Wire<u64>),
}

/// The gateway actor: answers [`RemoteRegistryMsg`]s from any node with a
/// local [`Registry`]. Its only state is the feeds of remote subscribers
/// (each a task of its own); join it to [`REGISTRY_GROUP`] (the node does)
/// to make it discoverable.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoteRegistryActor;

/// What a gateway needs: the registry it forwards to and its node's name.
#[derive(Debug, Clone)]
pub struct GatewayArgs {
    registry: Registry,
    node: String,
    /// Says the full name of every peer whose session closed.
    closed_peers: Option<broadcast::Sender<String>>,
}

/// The gateway's own state: its arguments and the remote subscribers'
/// feeds, by id.
#[derive(Debug)]
pub struct GatewayState {
    args: GatewayArgs,
    feeds: HashMap<u64, mpsc::UnboundedSender<FeedRequest>>,
    next_feed: u64,
}

impl GatewayArgs {
    /// A gateway for `registry` on the node named `node`.
    pub fn new(registry: Registry, node: impl Into<String>) -> Self {
        GatewayArgs {
            registry,
            node: node.into(),
            closed_peers: None,
        }
    }

    /// Ends the feeds of remote subscribers when their session closes:
    /// `closed_peers` carries the full node name (`name@host`) of every
    /// peer whose session closed. Without it (a gateway run by hand), a
    /// feed whose subscriber vanished without unsubscribing lives, within
    /// its window, until the gateway stops. `procward node` sets it.
    pub fn closed_peers(mut self, closed_peers: broadcast::Sender<String>) -> Self {
        self.closed_peers = Some(closed_peers);
        self
    }
}

/// Runs `work` in a task and sends its result through `port`. A caller
/// that went away (closed port) is not an error.
fn answer<T, F>(port: RpcReplyPort<Wire<T>>, work: F)
where
    T: Send + 'static,
    F: Future<Output = Result<T, RemoteError>> + Send + 'static,
{
    tokio::spawn(async move {
        let _ = port.send(Wire::new(work.await));
    });
}

impl Actor for RemoteRegistryActor {
    type Msg = RemoteRegistryMsg;
    type State = GatewayState;
    type Arguments = GatewayArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: GatewayArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(GatewayState {
            args,
            feeds: HashMap::new(),
            next_feed: 1,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let registry = state.args.registry.clone();
        match message {
            RemoteRegistryMsg::Info(port) => {
                let node = state.args.node.clone();
                let feeds = state.live_feeds();
                answer(port, async move {
                    let counts = registry.counts().await?;
                    Ok(NodeInfo {
                        node,
                        running: counts.running,
                        handles: counts.handles(),
                        feeds,
                    })
                });
            }
            RemoteRegistryMsg::Execute(request, port) => answer(port, async move {
                Ok(registry.execute(request.into_result()?).await?)
            }),
            RemoteRegistryMsg::Subscribe(args, port) => state.subscribe(args, port),
            RemoteRegistryMsg::Next(args, port) => state.next(args, port),
            RemoteRegistryMsg::Unsubscribe(feed) => {
                if let Ok(feed) = feed.into_result() {
                    // Dropping the sender ends the feed task.
                    state.feeds.remove(&feed);
                }
            }
        }
        Ok(())
    }
}

impl GatewayState {
    /// Starts a feed task: it subscribes locally, answers `port`, then
    /// serves pulls until it is dropped.
    fn subscribe(&mut self, args: Wire<SubscribeArgs>, port: RpcReplyPort<Wire<FeedStarted>>) {
        let args = match args.into_result() {
            Ok(args) => args,
            Err(err) => {
                let _ = port.send(Wire::new(Err(err)));
                return;
            }
        };
        self.live_feeds();
        let feed = self.next_feed;
        self.next_feed += 1;
        let (requests_tx, requests) = mpsc::unbounded_channel();
        self.feeds.insert(feed, requests_tx);
        let registry = self.args.registry.clone();
        // Subscribed before the local subscription starts, so that a close
        // in between is not missed.
        let closed_peers = self
            .args
            .closed_peers
            .as_ref()
            .map(broadcast::Sender::subscribe);
        tokio::spawn(async move {
            let (events_tx, events) = mpsc::unbounded_channel();
            let subscribed = registry
                .subscribe_with(args.id, Subscriber::Channel(events_tx))
                .await;
            match subscribed {
                Ok(subscribed) => {
                    let _ = port.send(Wire::ok(FeedStarted { feed, subscribed }));
                    Feed::new(args.peer, events, requests, closed_peers)
                        .run()
                        .await;
                }
                Err(err) => {
                    let _ = port.send(Wire::new(Err(err.into())));
                }
            }
        });
    }

    /// Forgets the feeds that ended on their own (an error, a closed
    /// session: they leave a closed sender behind) and counts the rest.
    fn live_feeds(&mut self) -> usize {
        self.feeds.retain(|_, requests| !requests.is_closed());
        self.feeds.len()
    }

    /// Hands a pull to its feed.
    fn next(&mut self, args: Wire<NextArgs>, port: RpcReplyPort<Wire<FeedBatch>>) {
        let args = match args.into_result() {
            Ok(args) => args,
            Err(err) => {
                let _ = port.send(Wire::new(Err(err)));
                return;
            }
        };
        let Some(feed) = self.feeds.get(&args.feed) else {
            let _ = port.send(Wire::new(Err(unknown_feed(args.feed))));
            return;
        };
        let request = FeedRequest::Next {
            received: args.received,
            port,
        };
        if let Err(mpsc::error::SendError(FeedRequest::Next { port, .. })) = feed.send(request) {
            self.feeds.remove(&args.feed);
            let _ = port.send(Wire::new(Err(unknown_feed(args.feed))));
        }
    }
}

fn unknown_feed(feed: u64) -> RemoteError {
    RemoteError::new(
        RemoteErrorKind::UnknownSubscription,
        format!("no subscription {feed} on this node (it ended, or its session closed)"),
    )
}
