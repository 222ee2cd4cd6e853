//! [`RegistryMsg`]: what the registry actor answers.

use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort};

use bytes::Bytes;

use super::{
    HandleCounts, HandleId, HandleSummary, KillRequest, ListFilter, ProcessMsg, ReadChunk,
    ReadRequest, RoutesCell, Snapshot, SnapshotWatch, SpawnRequest, SubscribeRequest, Subscribed,
    WaitOutcome,
};
use crate::error::Result;

/// A message to the registry actor.
///
/// Every request carries its reply port last, so `call!` and `call_t!` work,
/// and every reply is a `Result<_, Error>`, so every `call!` ends in `??`
/// (the first `?` for ractor's error, the second for procward's). `List`
/// and `ReopenOwner` cannot fail today; they answer `Result` all the same,
/// so that every request reads alike:
///
/// ```no_run
/// # async fn demo(registry: ractor::ActorRef<procward::RegistryMsg>) -> Result<(), Box<dyn std::error::Error>> {
/// use procward::{RegistryMsg, SpawnRequest};
///
/// let snap = ractor::call!(registry, RegistryMsg::Spawn, SpawnRequest::argv(["true"]))??;
/// let done = ractor::call!(registry, RegistryMsg::Wait, snap.handle_id, None)??;
/// assert_eq!(done.snapshot.exit_code, Some(0));
/// # Ok(()) }
/// ```
///
/// The registry never waits inside a handler: requests about a running
/// process are forwarded, reply port and all, to that process's actor, so a
/// pending `Wait` never delays a `Poll` or `Kill` sent after it. Requests
/// about one handle are answered in the order they were sent.
// Ractor boxes every message it delivers, so a large variant costs no
// extra copy per message; boxing `Spawn` would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum RegistryMsg {
    /// Starts a process. Answers once it has started, with its first
    /// snapshot (status `running`). At the cap, one handle is evicted and
    /// leaves a receipt: terminal handles whose status a caller has seen
    /// first, then terminal handles nobody has seen; within each group,
    /// the spawning owner's own handles before other owners', oldest
    /// first. When every handle runs, the spawn's [`CapPolicy`](super::CapPolicy)
    /// decides: evict a running one (killed, with a warning), refuse
    /// ([`Error::RegistryFull`](crate::Error::RegistryFull)), or queue until
    /// one ends.
    ///
    /// The request's [`subscribers`](SpawnRequest::subscribers) are attached
    /// before the child's output is read.
    Spawn(SpawnRequest, RpcReplyPort<Result<Snapshot>>),
    /// A snapshot of the handle now; never waits.
    Poll(HandleId, RpcReplyPort<Result<Snapshot>>),
    /// Answers when the handle is terminal, or when the optional timeout
    /// passes first (then `timed_out` is set and the process keeps running).
    Wait(
        HandleId,
        Option<Duration>,
        RpcReplyPort<Result<WaitOutcome>>,
    ),
    /// Kills the process tree; answers with the terminal snapshot once the
    /// handle is terminal. On a terminal handle it is a no-op that answers
    /// with the real status.
    Kill(HandleId, KillRequest, RpcReplyPort<Result<Snapshot>>),
    /// Forgets the handle (or its receipt) and frees its output, killing the
    /// tree first if it is running (the answer comes after the tree is
    /// reaped). Answers whether the handle was known.
    Release(HandleId, RpcReplyPort<Result<bool>>),
    /// Stops the process tree with SIGSTOP to its group. The status stays
    /// `running`, snapshots say `paused`. On a terminal handle, a no-op
    /// that answers the snapshot.
    Pause(HandleId, RpcReplyPort<Result<Snapshot>>),
    /// Continues a paused tree with SIGCONT.
    Resume(HandleId, RpcReplyPort<Result<Snapshot>>),
    /// Reads one stream's captured bytes from an offset on, without waiting
    /// and without copying more than it returns. See [`ReadRequest`].
    Read(HandleId, ReadRequest, RpcReplyPort<Result<ReadChunk>>),
    /// Appends bytes to the stdin of a process spawned with
    /// [`Stdin::Pipe`](super::Stdin::Pipe). Writes are applied in the order
    /// they reach the registry; each answers once its bytes are in the pipe
    /// (a child that does not read keeps the answer waiting).
    Write(HandleId, Bytes, RpcReplyPort<Result<()>>),
    /// Closes a piped stdin after the writes sent before it. Closing twice,
    /// or after the end of the process, is a no-op.
    CloseStdin(HandleId, RpcReplyPort<Result<()>>),
    /// Subscribes to the handle's output chunks (live, or replayed from
    /// offsets first: see [`SubscribeRequest::from`]) and its exit event.
    /// On a terminal handle, the replayed chunks (if asked for) then the
    /// exit event are sent.
    Subscribe(HandleId, SubscribeRequest, RpcReplyPort<Result<Subscribed>>),
    /// A [`SnapshotWatch`] of the handle: its latest snapshot, readable
    /// with no message at all (for hot polling loops). For a terminal
    /// handle or a receipt, a watch holding that snapshot.
    Watch(HandleId, RpcReplyPort<Result<SnapshotWatch>>),
    /// Lists the handles (receipts included, marked `evicted`) that pass
    /// the filter, oldest first.
    List(ListFilter, RpcReplyPort<Result<Vec<HandleSummary>>>),
    /// How many handles the registry holds, by kind, without listing
    /// them: for health checks and gauges.
    Counts(RpcReplyPort<Result<HandleCounts>>),
    /// Kills every running process of an owner (for a cancelled script or
    /// session); answers with their terminal snapshots once all are
    /// terminal.
    ///
    /// Spawns of the owner that reached the registry before this message
    /// and are still starting are killed as soon as they have started, and
    /// the answer waits for them too; spawns of the owner waiting in the
    /// queue (cap policy `Queue`) are dropped, each answered with
    /// [`Error::SpawnCancelled`](crate::Error::SpawnCancelled): nothing the
    /// owner asked for before the kill keeps running.
    KillOwner(String, KillRequest, RpcReplyPort<Result<Vec<Snapshot>>>),
    /// [`KillOwner`](Self::KillOwner), and closes the owner: every later
    /// spawn naming it is denied ([`DenyRule::OwnerClosed`](crate::policy::DenyRule::OwnerClosed))
    /// until [`ReopenOwner`](Self::ReopenOwner). For "cancel this session
    /// for good", where a spawn racing the cancel must not leak.
    CloseOwner(String, KillRequest, RpcReplyPort<Result<Vec<Snapshot>>>),
    /// Lets a closed owner spawn again. Answers whether it was closed.
    ReopenOwner(String, RpcReplyPort<Result<bool>>),
    /// Releases every handle and receipt of an owner, killing its running
    /// trees first; answers how many were released, once all are reaped.
    /// Spawns of the owner still starting or queued are not released.
    ReleaseOwner(String, RpcReplyPort<Result<usize>>),
    /// Sent by process actors about their handle. It cannot be built
    /// outside procward.
    Report(ProcessReport),
}

// With ractor's `cluster` feature there is no blanket `Message` impl.
#[cfg(feature = "cluster")]
impl ractor::Message for RegistryMsg {}

/// A process actor's report to its registry.
#[derive(Debug)]
pub struct ProcessReport(pub(crate) Report);

#[derive(Debug)]
pub(crate) enum Report {
    /// The handle is terminal. `observed`: a caller was already given the
    /// terminal snapshot. `actor`: the sender, for the registry to drain.
    Finished {
        snapshot: Box<Snapshot>,
        observed: bool,
        actor: ActorRef<ProcessMsg>,
    },
    /// A caller was given the terminal snapshot after `Finished` (by the
    /// process actor, or by a [`Registry`](crate::Registry) handle from the
    /// registry's [`Routes`]).
    Observed(HandleId),
    /// A [`Registry`](crate::Registry) handle asks for the registry's
    /// index of its live handles, to reach them without the mailbox: the
    /// registry puts it in the cell.
    Routes(RoutesCell),
    /// A spawn's fork ended (on the OS worker's thread); the registry
    /// holds the outcome under this number in its books of spawns starting,
    /// starts the process actor of the child, or passes the error on, and
    /// answers the spawn.
    Forked(u64),
}
