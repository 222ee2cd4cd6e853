//! [`RemoteRegistryActor`]: the gateway that lets other nodes use a local
//! registry, and [`RemoteRegistryMsg`], the serializable messages it answers.

use std::future::Future;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::error::RemoteError;
use super::wire::Wire;
use crate::messages::{
    HandleId, HandleSummary, KillRequest, ListFilter, ReadChunk, ReadRequest, Snapshot,
    SpawnRequest, Status, WaitOutcome,
};
use crate::registry::Registry;

/// The ractor process group that every node's gateway joins, across the
/// cluster.
pub const REGISTRY_GROUP: &str = "procward.registry";

/// What a gateway says about its node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's name as given to `procward node --name`.
    pub node: String,
    /// How many processes are running there now.
    pub running: usize,
    /// How many handles (running or finished, receipts included) it holds.
    pub handles: usize,
}

/// A wait on a remote handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitArgs {
    /// The handle on the gateway's node.
    pub id: HandleId,
    /// Answer with a running snapshot (`timed_out`) if this passes first.
    pub timeout: Option<Duration>,
}

/// A kill of a remote handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillArgs {
    /// The handle on the gateway's node.
    pub id: HandleId,
    /// Signal and grace.
    pub request: KillRequest,
}

/// A read of a remote handle's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadArgs {
    /// The handle on the gateway's node.
    pub id: HandleId,
    /// Stream, offset and size.
    pub request: ReadRequest,
}

/// A kill of everything an owner runs on the gateway's node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillOwnerArgs {
    /// The owner key the spawns carried.
    pub owner: String,
    /// Signal and grace.
    pub request: KillRequest,
}

/// A message to a node's gateway. Every variant is a call whose payloads
/// are plain data, so ractor_cluster can carry it between nodes; every
/// answer is a `Result` with a [`RemoteError`].
///
/// The gateway never waits inside a handler: each request runs in a task
/// of its own, so a pending `Wait` never delays anything else.
// Ractor boxes every message it delivers; boxing `Spawn` would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, RactorClusterMessage)]
pub enum RemoteRegistryMsg {
    /// The node's name and how many processes it runs (for placement).
    #[rpc]
    Info(RpcReplyPort<Wire<NodeInfo>>),
    /// Starts a process; see [`Registry::spawn`].
    #[rpc]
    Spawn(Wire<SpawnRequest>, RpcReplyPort<Wire<Snapshot>>),
    /// A snapshot now; see [`Registry::poll`].
    #[rpc]
    Poll(Wire<HandleId>, RpcReplyPort<Wire<Snapshot>>),
    /// Answers once terminal or when the timeout passes; see
    /// [`Registry::wait`].
    #[rpc]
    Wait(Wire<WaitArgs>, RpcReplyPort<Wire<WaitOutcome>>),
    /// Kills the tree; see [`Registry::kill`].
    #[rpc]
    Kill(Wire<KillArgs>, RpcReplyPort<Wire<Snapshot>>),
    /// Forgets the handle; see [`Registry::release`].
    #[rpc]
    Release(Wire<HandleId>, RpcReplyPort<Wire<bool>>),
    /// Reads output from an offset on; see [`Registry::read`].
    #[rpc]
    Read(Wire<ReadArgs>, RpcReplyPort<Wire<ReadChunk>>),
    /// The handles passing the filter; see [`Registry::list_where`].
    #[rpc]
    List(Wire<ListFilter>, RpcReplyPort<Wire<Vec<HandleSummary>>>),
    /// Kills every running tree of an owner; see [`Registry::kill_owner`].
    #[rpc]
    KillOwner(Wire<KillOwnerArgs>, RpcReplyPort<Wire<Vec<Snapshot>>>),
}

/// The gateway actor: answers [`RemoteRegistryMsg`]s from any node with a
/// local [`Registry`]. It holds no state of its own; join it to
/// [`REGISTRY_GROUP`] (the node does) to make it discoverable.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoteRegistryActor;

/// What a gateway needs: the registry it forwards to and its node's name.
#[derive(Debug, Clone)]
pub struct GatewayArgs {
    registry: Registry,
    node: String,
    /// Told the pid (= process group) of every spawn, as `+pid`.
    spawned: Option<mpsc::UnboundedSender<String>>,
}

impl GatewayArgs {
    /// A gateway for `registry` on the node named `node`.
    pub fn new(registry: Registry, node: impl Into<String>) -> Self {
        GatewayArgs {
            registry,
            node: node.into(),
            spawned: None,
        }
    }

    pub(crate) fn spawned_to(mut self, notes: mpsc::UnboundedSender<String>) -> Self {
        self.spawned = Some(notes);
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

async fn running_count(registry: &Registry) -> Result<usize, RemoteError> {
    let filter = ListFilter {
        owner: None,
        status: Some(Status::Running),
    };
    Ok(registry.list_where(filter).await?.len())
}

impl Actor for RemoteRegistryActor {
    type Msg = RemoteRegistryMsg;
    type State = GatewayArgs;
    type Arguments = GatewayArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: GatewayArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let registry = state.registry.clone();
        match message {
            RemoteRegistryMsg::Info(port) => {
                let node = state.node.clone();
                answer(port, async move {
                    let handles = registry.list().await?.len();
                    let running = running_count(&registry).await?;
                    Ok(NodeInfo {
                        node,
                        running,
                        handles,
                    })
                });
            }
            RemoteRegistryMsg::Spawn(request, port) => {
                let notes = state.spawned.clone();
                answer(port, async move {
                    let snapshot = registry.spawn(request.into_result()?).await?;
                    if let Some(notes) = notes {
                        let _ = notes.send(format!("+{}", snapshot.pid));
                    }
                    Ok(snapshot)
                })
            }
            RemoteRegistryMsg::Poll(id, port) => {
                answer(
                    port,
                    async move { Ok(registry.poll(id.into_result()?).await?) },
                )
            }
            RemoteRegistryMsg::Wait(args, port) => answer(port, async move {
                let args = args.into_result()?;
                Ok(registry.wait(args.id, args.timeout).await?)
            }),
            RemoteRegistryMsg::Kill(args, port) => answer(port, async move {
                let args = args.into_result()?;
                Ok(registry.kill(args.id, args.request).await?)
            }),
            RemoteRegistryMsg::Release(id, port) => answer(port, async move {
                Ok(registry.release(id.into_result()?).await?)
            }),
            RemoteRegistryMsg::Read(args, port) => answer(port, async move {
                let args = args.into_result()?;
                Ok(registry.read(args.id, args.request).await?)
            }),
            RemoteRegistryMsg::List(filter, port) => answer(port, async move {
                Ok(registry.list_where(filter.into_result()?).await?)
            }),
            RemoteRegistryMsg::KillOwner(args, port) => answer(port, async move {
                let args = args.into_result()?;
                Ok(registry.kill_owner(args.owner, args.request).await?)
            }),
        }
        Ok(())
    }
}
