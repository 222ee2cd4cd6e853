//! [`Registry`]: a cheap, cloneable handle to a registry actor with plain
//! `async fn` methods, for callers who do not want to deal in messages.

mod execute;

use std::convert::identity;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorRef, ActorStatus, RpcReplyPort};

use crate::actors::RegistryActor;
use crate::config::RegistryConfig;
use crate::error::{Error, Result};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::messages::{
    HandleCounts, HandleId, HandleSummary, KillRequest, ListFilter, OutputEvent, ProcessMsg,
    ProcessReport, ReadChunk, ReadRequest, RegistryMsg, Report, Route, RoutesCell, Snapshot,
    SpawnRequest, SubscribeRequest, Subscribed, Subscriber, WaitOutcome,
};

/// A handle to a registry actor. Cloning it is cheap; every clone talks to
/// the same registry.
///
/// A registry started with [`Registry::start`] is stopped when the last
/// clone is dropped, which kills and reaps every process it owns (in the
/// background; call [`shutdown`](Self::shutdown) to wait for it). A handle
/// made with [`Registry::from_actor`] never stops the actor: its supervisor
/// owns it.
///
/// Every method converts ractor's errors into [`Error`]: a registry that is
/// not running gives [`Error::RegistryUnavailable`].
///
/// # The direct route
///
/// A handle reads the registry's index of its live handles, which the
/// registry actor alone writes (it hands the index over when it handles
/// the request for it that making the handle sends), and so
/// [`poll`](Self::poll), [`wait`](Self::wait) and [`kill`](Self::kill)
/// skip the registry's mailbox: a finished handle is answered from the
/// terminal snapshot the registry stored, with no message at all; a
/// running one is asked at its process actor, one hop instead of two. The
/// answers are the ones the registry would give (see
/// `docs/architecture.md`, "The direct route"); a handle the index does not
/// hold (unknown, released, evicted, or still starting) is asked of the
/// registry as before, and so is every request until the registry has
/// handed the index over (or when it cannot: a registry on another node).
#[derive(Debug, Clone)]
pub struct Registry {
    /// One reference count per clone: a caller that clones the handle into
    /// every task (or every request) pays one atomic increment.
    inner: Arc<Handle>,
}

/// What every clone of a [`Registry`] shares.
#[derive(Debug)]
struct Handle {
    actor: ActorRef<RegistryMsg>,
    /// The registry's index of its live handles, once it handed it over.
    routes: RoutesCell,
    /// Set for a handle from [`Registry::start`]: the registry is stopped
    /// when the last clone goes. (Not to be confused with a spawn's
    /// `owner` key.)
    stops_registry: bool,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.stops_registry {
            // Requests already sent are handled first, as by `shutdown`.
            let _ = self.actor.drain();
        }
    }
}

impl Registry {
    /// A handle on `actor`; `stops_registry`: see [`Handle`].
    fn wrap(actor: ActorRef<RegistryMsg>, stops_registry: bool) -> Registry {
        Registry {
            inner: Arc::new(Handle {
                routes: ask_for_routes(&actor),
                actor,
                stops_registry,
            }),
        }
    }
}

impl Registry {
    /// Starts a registry actor (unsupervised) and returns a handle that
    /// owns it. Must be called inside a tokio runtime.
    pub async fn start(config: RegistryConfig) -> Result<Self> {
        config.validate()?;
        let (actor, _) = Actor::spawn(None, RegistryActor, config)
            .await
            .map_err(|err| Error::actor_start("registry", err))?;
        Ok(Registry::wrap(actor, true))
    }

    /// Wraps a registry actor started elsewhere (for example linked under
    /// your own supervisor). Dropping the handle leaves the actor running.
    pub fn from_actor(actor: ActorRef<RegistryMsg>) -> Self {
        Registry::wrap(actor, false)
    }

    /// The registry actor, for sending [`RegistryMsg`]s directly.
    pub fn actor(&self) -> &ActorRef<RegistryMsg> {
        &self.inner.actor
    }

    /// Starts a process; see [`RegistryMsg::Spawn`]. Returns once it has
    /// started, with the running snapshot (handle id, pid, command, start
    /// time). At the cap, what happens depends on the
    /// [`CapPolicy`](crate::CapPolicy): with `Queue` (the default) this
    /// waits for a place.
    pub async fn spawn(&self, request: SpawnRequest) -> Result<Snapshot> {
        self.call("spawn", |tx| RegistryMsg::Spawn(request, tx))
            .await?
    }

    /// Starts a process with a channel subscribed from its first byte: the
    /// [`Subscription`] gets every chunk from offset 0, then exactly one
    /// exit event. See [`SpawnRequest::subscribe`] to subscribe an actor.
    pub async fn spawn_subscribed(
        &self,
        request: SpawnRequest,
    ) -> Result<(Snapshot, Subscription)> {
        let (tx, events) = mpsc::unbounded_channel();
        let snapshot = self
            .spawn(request.subscribe(Subscriber::Channel(tx)))
            .await?;
        let subscription = Subscription {
            subscribed: Subscribed {
                stdout_offset: 0,
                stderr_offset: 0,
            },
            events,
        };
        Ok((snapshot, subscription))
    }

    /// A snapshot of the handle now; never waits for the process.
    ///
    /// A finished handle is answered without any message, a running one
    /// by its process actor without passing through the registry (see
    /// [the direct route](Self#the-direct-route)).
    pub async fn poll(&self, id: HandleId) -> Result<Snapshot> {
        let copy = |snapshot: &Arc<Snapshot>| Snapshot::clone(snapshot);
        let to_registry = |tx| RegistryMsg::Poll(id, tx);
        self.routed(id, "poll", copy, identity, ProcessMsg::Poll, to_registry)
            .await
    }

    /// [`poll`](Self::poll), answered as a shared snapshot: the same
    /// answer, but a finished handle's costs a reference count instead of a
    /// copy of the snapshot (its command, its output's handles). For
    /// callers that poll finished handles often; a running handle's
    /// snapshot is built fresh either way.
    pub async fn poll_shared(&self, id: HandleId) -> Result<Arc<Snapshot>> {
        let to_registry = |tx| RegistryMsg::Poll(id, tx);
        self.routed(
            id,
            "poll",
            Arc::clone,
            Arc::new,
            ProcessMsg::Poll,
            to_registry,
        )
        .await
    }

    /// Waits until the handle is terminal. With a `timeout`, returns a
    /// running snapshot with `timed_out` set if it passes first, and leaves
    /// the process running.
    ///
    /// Cancel safety: dropping the future abandons the wait only; the
    /// process is not affected.
    pub async fn wait(&self, id: HandleId, timeout: Option<Duration>) -> Result<WaitOutcome> {
        let finished = |snapshot: &Arc<Snapshot>| WaitOutcome {
            snapshot: Snapshot::clone(snapshot),
            timed_out: false,
        };
        let to_actor = |tx| ProcessMsg::Wait(timeout, tx);
        let to_registry = |tx| RegistryMsg::Wait(id, timeout, tx);
        self.routed(id, "wait", finished, identity, to_actor, to_registry)
            .await
    }

    /// Kills the process tree and returns the terminal snapshot. Killing a
    /// terminal handle is a successful no-op returning its real status.
    pub async fn kill(&self, id: HandleId, request: KillRequest) -> Result<Snapshot> {
        let to_actor = |tx| ProcessMsg::Kill(request, tx);
        let to_registry = |tx| RegistryMsg::Kill(id, request, tx);
        let finished = |snapshot: &Arc<Snapshot>| Snapshot::clone(snapshot);
        self.routed(id, "kill", finished, identity, to_actor, to_registry)
            .await
    }

    /// Sends a kill and returns without waiting for the answer: `Ok` once
    /// the registry has it, an error only when the registry is not running.
    /// A kill sent this way does not count as a caller seeing the terminal
    /// status (for the eviction order).
    pub fn kill_nowait(&self, id: HandleId, request: KillRequest) -> Result<()> {
        self.detour(id);
        self.cast(|tx| RegistryMsg::Kill(id, request, tx))
    }

    /// Forgets the handle, killing its tree first if it is running. Returns
    /// whether the handle was known.
    pub async fn release(&self, id: HandleId) -> Result<bool> {
        self.call("release", |tx| RegistryMsg::Release(id, tx))
            .await?
    }

    /// Sends a release and returns without waiting for the answer (or for
    /// the tree to be reaped): `Ok` once the registry has it, an error only
    /// when the registry is not running.
    pub fn release_nowait(&self, id: HandleId) -> Result<()> {
        self.detour(id);
        self.cast(|tx| RegistryMsg::Release(id, tx))
    }

    /// Stops the process tree (SIGSTOP to its group). The status stays
    /// `running`; snapshots say `paused`. A no-op on a terminal handle.
    pub async fn pause(&self, id: HandleId) -> Result<Snapshot> {
        self.call("pause", |tx| RegistryMsg::Pause(id, tx)).await?
    }

    /// Continues a paused process tree (SIGCONT).
    pub async fn resume(&self, id: HandleId) -> Result<Snapshot> {
        self.call("resume", |tx| RegistryMsg::Resume(id, tx))
            .await?
    }

    /// A [`SnapshotWatch`](crate::SnapshotWatch) of the handle: its latest
    /// snapshot, read afterwards with no message at all (see its docs for
    /// how fresh it is).
    pub async fn watch(&self, id: HandleId) -> Result<crate::SnapshotWatch> {
        self.call("watch", |tx| RegistryMsg::Watch(id, tx)).await?
    }

    /// Reads one stream from an offset on; see [`ReadRequest`]. Never waits
    /// for the process; costs what it returns, not what is captured.
    pub async fn read(&self, id: HandleId, request: ReadRequest) -> Result<ReadChunk> {
        self.call("read", |tx| RegistryMsg::Read(id, request, tx))
            .await?
    }

    /// Writes bytes to the stdin of a process spawned with
    /// [`Stdin::Pipe`](crate::messages::Stdin::Pipe); returns once they are
    /// in the pipe. Writes apply in order.
    pub async fn write(&self, id: HandleId, bytes: impl Into<Bytes>) -> Result<()> {
        let bytes = bytes.into();
        self.call("write", |tx| RegistryMsg::Write(id, bytes, tx))
            .await?
    }

    /// Closes a piped stdin (the child reads end of file) after the writes
    /// sent before.
    pub async fn close_stdin(&self, id: HandleId) -> Result<()> {
        self.call("close_stdin", |tx| RegistryMsg::CloseStdin(id, tx))
            .await?
    }

    /// Subscribes to the handle's live output and its exit event, through
    /// a channel. See [`Subscription`]. Output written before the
    /// subscription is not sent: subscribe at spawn
    /// ([`spawn_subscribed`](Self::spawn_subscribed)) or replay with
    /// [`subscribe_from`](Self::subscribe_from).
    pub async fn subscribe(&self, id: HandleId) -> Result<Subscription> {
        self.subscribe_channel(id, None).await
    }

    /// Subscribes through a channel, first replaying what the capture
    /// holds from `from` on (see [`SubscribeRequest::from`]), then live.
    pub async fn subscribe_from(&self, id: HandleId, from: crate::Offsets) -> Result<Subscription> {
        self.subscribe_channel(id, Some(from)).await
    }

    async fn subscribe_channel(
        &self,
        id: HandleId,
        from: Option<crate::Offsets>,
    ) -> Result<Subscription> {
        let (tx, events) = mpsc::unbounded_channel();
        let request = SubscribeRequest {
            from,
            ..SubscribeRequest::new(Subscriber::Channel(tx))
        };
        let subscribed = self.subscribe_with(id, request).await?;
        Ok(Subscription { subscribed, events })
    }

    /// Subscribes any [`Subscriber`] (for example an actor:
    /// `Subscriber::Actor(my_actor.get_derived())`), or a
    /// [`SubscribeRequest`] with a tag and a replay offset.
    pub async fn subscribe_with(
        &self,
        id: HandleId,
        request: impl Into<SubscribeRequest>,
    ) -> Result<Subscribed> {
        let request = request.into();
        self.call("subscribe", |tx| RegistryMsg::Subscribe(id, request, tx))
            .await?
    }

    /// Every handle the registry holds (receipts of evicted handles
    /// included, marked `evicted`), oldest first.
    pub async fn list(&self) -> Result<Vec<HandleSummary>> {
        self.list_where(ListFilter::default()).await
    }

    /// How many handles the registry holds, by kind, without listing
    /// them.
    pub async fn counts(&self) -> Result<HandleCounts> {
        self.call("counts", RegistryMsg::Counts).await?
    }

    /// The handles that pass `filter` (by owner, by status), oldest first.
    pub async fn list_where(&self, filter: ListFilter) -> Result<Vec<HandleSummary>> {
        self.call("list", |tx| RegistryMsg::List(filter, tx))
            .await?
    }

    /// Kills every running process tree of `owner` (for a cancelled script
    /// or session) and returns their terminal snapshots once all are
    /// terminal. Spawns of `owner` sent before this call and still starting
    /// are killed too, as soon as they have started.
    pub async fn kill_owner(
        &self,
        owner: impl Into<String>,
        request: KillRequest,
    ) -> Result<Vec<Snapshot>> {
        let owner = owner.into();
        self.call("kill_owner", |tx| {
            RegistryMsg::KillOwner(owner, request, tx)
        })
        .await?
    }

    /// [`kill_owner`](Self::kill_owner), and closes `owner`: every later
    /// spawn naming it is denied with [`Error::PolicyDenied`] and rule
    /// [`DenyRule::OwnerClosed`](crate::policy::DenyRule::OwnerClosed),
    /// until [`reopen_owner`](Self::reopen_owner).
    pub async fn close_owner(
        &self,
        owner: impl Into<String>,
        request: KillRequest,
    ) -> Result<Vec<Snapshot>> {
        let owner = owner.into();
        self.call("close_owner", |tx| {
            RegistryMsg::CloseOwner(owner, request, tx)
        })
        .await?
    }

    /// Lets a closed owner spawn again; returns whether it was closed.
    pub async fn reopen_owner(&self, owner: impl Into<String>) -> Result<bool> {
        let owner = owner.into();
        self.call("reopen_owner", |tx| RegistryMsg::ReopenOwner(owner, tx))
            .await?
    }

    /// Releases every handle and receipt of `owner`, killing its running
    /// trees first; returns how many were released, once all are reaped.
    pub async fn release_owner(&self, owner: impl Into<String>) -> Result<usize> {
        let owner = owner.into();
        self.call("release_owner", |tx| RegistryMsg::ReleaseOwner(owner, tx))
            .await?
    }

    /// Stops the registry and waits until every process it owned is killed
    /// and reaped. Requests already sent are handled first (a pending wait
    /// gets the `killed` snapshot; a spawn still starting gets
    /// [`Error::RegistryUnavailable`] and its child is killed); requests
    /// sent after, from other clones of this handle, get
    /// [`Error::RegistryUnavailable`].
    pub async fn shutdown(&self) -> Result<()> {
        self.inner
            .actor
            .drain_and_wait(None)
            .await
            .map_err(Error::unavailable)
    }

    /// Sends the spawn now, before returning; the future awaits only the
    /// answer. For a caller that must have its spawns reach the registry in
    /// the order it read them (the JSON server), whatever order its tasks
    /// then run in.
    #[cfg(feature = "serve")]
    pub(crate) fn send_spawn(
        &self,
        request: SpawnRequest,
    ) -> impl Future<Output = Result<Snapshot>> + Send + 'static + use<> {
        let (tx, rx) = ractor::concurrency::oneshot();
        let sent = self
            .inner
            .actor
            .cast(RegistryMsg::Spawn(request, tx.into()))
            .map_err(Error::unavailable);
        async move {
            sent?;
            rx.await.map_err(|_| Error::no_reply("spawn"))?
        }
    }

    /// Where the index says `id` is, while the registry runs; `None`: ask
    /// the registry. Every caller observes what it is given.
    #[inline]
    fn route<F>(
        &self,
        id: HandleId,
        finished: impl FnOnce(&Arc<Snapshot>) -> F,
    ) -> Option<Route<F>> {
        let routes = self.inner.routes.get()?;
        // A registry draining or stopped answers `RegistryUnavailable`, as
        // its mailbox does.
        if self.inner.actor.get_status() != ActorStatus::Running {
            return None;
        }
        routes.get(id, true, finished)
    }

    /// Tells the registry, the first time, that a caller was given the
    /// handle's terminal status (it matters to the eviction order). Sent
    /// before the caller has the answer, so that whatever the caller sends
    /// the registry next comes after it.
    fn seen(&self, id: HandleId, first_sight: bool) {
        if first_sight {
            let observed = Report::Observed(id);
            let _ = self
                .inner
                .actor
                .cast(RegistryMsg::Report(ProcessReport(observed)));
        }
    }

    /// Keeps the requests this caller sends about `id` from now on behind
    /// one it is about to send through the mailbox without waiting.
    fn detour(&self, id: HandleId) {
        if let Some(routes) = self.inner.routes.get() {
            routes.detour(id);
        }
    }

    /// A request about one handle (poll, wait, kill) the way the index
    /// says: answered from a finished handle's snapshot (`finished`, given
    /// the index's own, to share or copy), sent
    /// to a running handle's process actor, or else to the registry (their
    /// answer through `answered`).
    async fn routed<T: Send + 'static, U>(
        &self,
        id: HandleId,
        operation: &'static str,
        finished: impl FnOnce(&Arc<Snapshot>) -> U,
        answered: impl FnOnce(T) -> U,
        to_actor: impl FnOnce(RpcReplyPort<Result<T>>) -> ProcessMsg,
        to_registry: impl FnOnce(RpcReplyPort<Result<T>>) -> RegistryMsg,
    ) -> Result<U> {
        let actor = match self.route(id, finished) {
            Some(Route::Finished {
                answer,
                first_sight,
            }) => {
                self.seen(id, first_sight);
                return Ok(answer);
            }
            Some(Route::Running(actor)) => Some(actor),
            None => None,
        };
        // Boxed: the answer above is the hot path, and a future as large as
        // a round trip's would be copied on every call.
        Box::pin(self.send(actor, operation, to_actor, to_registry))
            .await
            .map(answered)
    }

    /// Asks a running handle's process actor directly, or the registry.
    /// An actor that takes no more messages is draining (its handle just
    /// finished, or was released or evicted): the registry is asked
    /// instead, and knows what the handle became.
    async fn send<T: Send + 'static>(
        &self,
        actor: Option<ActorRef<ProcessMsg>>,
        operation: &'static str,
        to_actor: impl FnOnce(RpcReplyPort<Result<T>>) -> ProcessMsg,
        to_registry: impl FnOnce(RpcReplyPort<Result<T>>) -> RegistryMsg,
    ) -> Result<T> {
        if let Some(actor) = actor {
            let (tx, rx) = ractor::concurrency::oneshot();
            if actor.cast(to_actor(tx.into())).is_ok() {
                return rx.await.map_err(|_| Error::no_reply(operation))?;
            }
        }
        self.call(operation, to_registry).await?
    }

    /// Sends a request whose answer nobody waits for.
    fn cast<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<T>) -> RegistryMsg,
    ) -> Result<()> {
        let (tx, rx) = ractor::concurrency::oneshot();
        // Closed before it is sent: whoever handles it sees nobody waits.
        drop(rx);
        self.inner
            .actor
            .cast(build(tx.into()))
            .map_err(Error::unavailable)
    }

    async fn call<T: Send + 'static>(
        &self,
        operation: &'static str,
        build: impl FnOnce(RpcReplyPort<T>) -> RegistryMsg,
    ) -> Result<T> {
        // What `ActorRef::call` does without a timeout, in a smaller future:
        // ractor's carries its timeout machinery even when there is none.
        let (tx, rx) = ractor::concurrency::oneshot();
        self.inner
            .actor
            .cast(build(tx.into()))
            .map_err(Error::unavailable)?;
        rx.await.map_err(|_| Error::no_reply(operation))
    }
}

/// Asks the registry for its index; it arrives in the cell when the
/// registry has handled the request. A registry that cannot take the
/// request (stopped, or on another node, where this message does not go)
/// leaves the cell empty: the handle then asks the registry for
/// everything.
fn ask_for_routes(actor: &ActorRef<RegistryMsg>) -> RoutesCell {
    let cell = RoutesCell::default();
    let _ = actor.cast(RegistryMsg::Report(ProcessReport(Report::Routes(
        cell.clone(),
    ))));
    cell
}

/// A live feed of one process's output chunks, ending with its exit event.
///
/// Chunks come in order per stream, each with its stream offset. The feed
/// never grows without bound: a subscriber holds at most a fixed window of
/// chunks (16) that it has received but not yet dropped; while the window is
/// full, chunks are not queued but counted, and the subscriber gets an
/// [`OutputEvent::Missed`] with the count before its next chunk of that
/// stream (the bytes can still be read with [`Registry::read`] unless the
/// capture cap dropped them). The child is never slowed down by a
/// subscriber. [`OutputEvent::Exit`] comes exactly once and last; after it,
/// [`recv`](Self::recv) returns `None`.
#[derive(Debug)]
pub struct Subscription {
    /// Where the live chunks start in each stream.
    pub subscribed: Subscribed,
    events: mpsc::UnboundedReceiver<OutputEvent>,
}

impl Subscription {
    /// The next event; `None` after the exit event.
    pub async fn recv(&mut self) -> Option<OutputEvent> {
        self.events.recv().await
    }
}
