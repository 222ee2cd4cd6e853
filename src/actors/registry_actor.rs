//! The registry actor: owns the handle table, the receipts of evicted
//! handles and the eviction policy, and starts one linked
//! [process actor](super::process) per spawn.
//!
//! Requests about a running handle are forwarded to its process actor with
//! the caller's reply port; the registry itself never waits on a process.
//! When a process actor reports its handle terminal, the registry keeps the
//! terminal snapshot, answers for the handle from then on, and drains the
//! actor (it answers what is already queued for it, then stops).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::oneshot;
use ractor::{
    Actor, ActorId, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort, SupervisionEvent,
};

use super::handle_table::{EntryState, HandleTable, Owner, RunningActor, running_summary};
use super::process_actor::{ProcessActor, ProcessArgs, ProcessSettings};
use super::receipts::{Receipt, ReceiptState, Receipts};
use super::subscribers::exit_only;
use crate::config::{CgroupMode, RegistryConfig};
use crate::error::Unavailable;
use crate::error::{Error, Result};
use crate::messages::{
    CapPolicy, Containment, HandleCounts, HandleId, HandleSummary, KillRequest, ListFilter,
    ProcessMsg, ProcessReport, RegistryMsg, Report, RouteBook, Snapshot, SnapshotWatch,
    SpawnRequest, Status, WaitOutcome,
};
use crate::os::cgroup::{self, Placement, RegistryCgroup};
use crate::os::child::RawSpawned;
use crate::os::escapees;
use crate::os::guard::Guard;
use crate::os::worker::{self, Worker};
use crate::policy::{Denied, DenyRule, PolicyContext, SpawnPolicy};

/// How long stopping the registry waits for its process actors to kill and
/// reap their children.
const STOP_CHILDREN_WAIT: Duration = Duration::from_secs(10);
/// How long stopping the registry waits for what is left in its cgroup to
/// die after `cgroup.kill`, before it leaves the cgroup behind (logged).
const STOP_CGROUP_WAIT: Duration = Duration::from_secs(5);

/// The registry actor. Start it with [`Registry::start`](crate::Registry::start),
/// or with ractor's `Actor::spawn_linked` under a supervisor of your own,
/// passing a [`RegistryConfig`] as its arguments.
///
/// Stopping it kills and reaps every child it owns before it is reported
/// stopped, and answers pending requests first. A ractor supervisor that
/// stops *kills* its children instead (no `post_stop` runs): the children
/// are then SIGKILLed at once and reaped in the background, and pending
/// requests get [`Error::NoReply`](crate::Error::NoReply). For an orderly
/// shutdown, stop the registry in your supervisor's `post_stop`
/// (`myself.stop_children_and_wait(None, None).await`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RegistryActor;

/// The registry's state: its settings, its handle table and the receipts of
/// evicted handles. Owned by the actor; nothing outside it can reach it.
#[derive(Debug)]
pub struct RegistryState {
    config: RegistryConfig,
    table: HandleTable<ActorRef<ProcessMsg>>,
    /// What `table` holds, published for the `Registry` handles to read
    /// (the direct route): kept equal to it at every change.
    routes: RouteBook,
    receipts: Receipts<ActorRef<ProcessMsg>>,
    /// Starts every spawn's `PROCWARD_TOKEN`: unique to this registry.
    token_prefix: String,
    /// Numbers the spawns' tokens.
    next_token: u64,
    /// Kills what carries the prefix if the host dies; dismissed by an
    /// orderly stop.
    guard: Option<Guard>,
    /// The OS worker that forks and sweeps for every registry.
    worker: &'static Worker,
    /// Spawns accepted and still starting (forking, or their process actor
    /// starting), by number: they count against the concurrency caps, and
    /// a `KillOwner` kills them once they have started.
    starting: HashMap<u64, Starting>,
    /// How many of `starting` each owner has.
    starting_of: HashMap<Owner, usize>,
    next_spawn: u64,
    /// Owners closed by `CloseOwner`: their spawns are denied.
    closed: HashSet<Arc<str>>,
    /// Spawns waiting for a place (cap policy `Queue`), oldest first;
    /// already validated and passed by the policy.
    queue: VecDeque<Queued>,
    /// Turns SIGCHLD into orphan reaping (orphan-reaping mode).
    child_signals: Option<tokio::task::JoinHandle<()>>,
    /// The registry's own cgroup, parent of one cgroup per spawn, under
    /// cgroup containment.
    cgroup: Option<RegistryCgroup>,
    /// What every process actor of this registry reads, shared by all.
    process_settings: Arc<ProcessSettings>,
}

/// A spawn waiting in the queue for a place.
#[derive(Debug)]
struct Queued {
    request: SpawnRequest,
    reply: RpcReplyPort<Result<Snapshot>>,
}

/// What the OS worker hands back for one spawn: the request as the policy
/// left it and the forked child, or why it could not start.
type ForkOutcome = Result<(Box<SpawnRequest>, RawSpawned)>;

/// A spawn accepted and still starting.
#[derive(Debug)]
struct Starting {
    owner: Owner,
    /// Kills asked for by a `KillOwner` meanwhile, sent once it runs.
    kills: Vec<(KillRequest, RpcReplyPort<Result<Snapshot>>)>,
    /// The fork's outcome, sent before `Report::Forked` announces it. If
    /// the registry is gone by then, the child in it is dropped, which
    /// kills and reaps it.
    outcome: tokio::sync::oneshot::Receiver<ForkOutcome>,
    escapee_token: Option<String>,
    reply: RpcReplyPort<Result<Snapshot>>,
}

impl RunningActor for ActorRef<ProcessMsg> {
    type Key = ActorId;

    fn key(&self) -> ActorId {
        self.get_id()
    }
}

/// Who answers a request about one handle.
enum Target<'a> {
    /// Nobody: never known, released, or its receipt expired.
    Unknown,
    /// The process actor (a running handle, or one evicted while running
    /// and still being killed).
    Actor(&'a ActorRef<ProcessMsg>),
    /// The registry, from a terminal snapshot or a receipt.
    Snapshot(&'a Snapshot),
}

impl Actor for RegistryActor {
    type Msg = RegistryMsg;
    type State = RegistryState;
    type Arguments = RegistryConfig;

    async fn pre_start(
        &self,
        myself: ActorRef<RegistryMsg>,
        config: RegistryConfig,
    ) -> Result<RegistryState, ActorProcessingErr> {
        config.validate()?;
        let worker = worker::worker()?;
        let child_signals = if config.reap_orphans {
            worker
                .reap_orphans()
                .map_err(|source| Error::os("becoming a child subreaper", source))?;
            Some(listen_for_child_signals(worker))
        } else {
            None
        };
        let cgroup = make_cgroup(worker, &config).await?;
        let token_prefix = escapees::new_token_prefix();
        let guard = if config.guard {
            let guard = Guard::start(&token_prefix, cgroup.as_ref().map(RegistryCgroup::path))
                .map_err(|source| Error::os("starting the registry's guard process", source))?;
            worker.keep(guard.pid());
            Some(guard)
        } else {
            None
        };
        let process_settings = Arc::new(ProcessSettings {
            drain_grace: config.drain_grace,
            kill_grace: config.kill_grace,
            reap_orphans: config.reap_orphans,
            clock: config.clock.clone(),
            registry: myself,
        });
        Ok(RegistryState {
            process_settings,
            receipts: Receipts::new(config.max_receipts),
            config,
            table: HandleTable::default(),
            routes: RouteBook::default(),
            token_prefix,
            next_token: 1,
            guard,
            worker,
            starting: HashMap::new(),
            starting_of: HashMap::new(),
            next_spawn: 0,
            closed: HashSet::new(),
            queue: VecDeque::new(),
            child_signals,
            cgroup,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RegistryMsg>,
        message: RegistryMsg,
        state: &mut RegistryState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RegistryMsg::Spawn(request, reply) => state.spawn(&myself, request, reply),
            RegistryMsg::Poll(id, reply) => {
                state.route(id, reply, ProcessMsg::Poll, |s| Ok(s.clone()), true)
            }
            RegistryMsg::Wait(id, timeout, reply) => state.route(
                id,
                reply,
                |reply| ProcessMsg::Wait(timeout, reply),
                |s| {
                    Ok(WaitOutcome {
                        snapshot: s.clone(),
                        timed_out: false,
                    })
                },
                true,
            ),
            RegistryMsg::Kill(id, request, reply) => state.route(
                id,
                reply,
                |reply| ProcessMsg::Kill(request, reply),
                |s| Ok(s.clone()),
                true,
            ),
            RegistryMsg::Read(id, request, reply) => state.route(
                id,
                reply,
                |reply| ProcessMsg::Read(request, reply),
                |s| s.read(&request),
                false,
            ),
            RegistryMsg::Write(id, bytes, reply) => state.route(
                id,
                reply,
                |reply| ProcessMsg::Write(bytes, reply),
                |_| Err(Error::StdinClosed(id)),
                false,
            ),
            RegistryMsg::CloseStdin(id, reply) => {
                state.route(id, reply, ProcessMsg::CloseStdin, |_| Ok(()), false)
            }
            RegistryMsg::Subscribe(id, request, reply) => {
                let for_actor = request.clone();
                state.route(
                    id,
                    reply,
                    |reply| ProcessMsg::Subscribe(for_actor, reply),
                    |s| exit_only(request, s),
                    false,
                )
            }
            RegistryMsg::Watch(id, reply) => state.route(
                id,
                reply,
                ProcessMsg::Watch,
                |s| Ok(SnapshotWatch::new(s.clone())),
                false,
            ),
            RegistryMsg::Release(id, reply) => state.release(id, reply),
            RegistryMsg::Pause(id, reply) => {
                state.route(id, reply, ProcessMsg::Pause, |s| Ok(s.clone()), false)
            }
            RegistryMsg::Resume(id, reply) => {
                state.route(id, reply, ProcessMsg::Resume, |s| Ok(s.clone()), false)
            }
            RegistryMsg::List(filter, reply) => send(reply, Ok(state.list(&filter))),
            RegistryMsg::Counts(reply) => send(reply, Ok(state.counts())),
            RegistryMsg::KillOwner(owner, request, reply) => {
                state.kill_owner(owner, request, reply)
            }
            RegistryMsg::CloseOwner(owner, request, reply) => {
                state.closed.insert(owner.as_str().into());
                tracing::debug!(%owner, "owner closed");
                state.kill_owner(owner, request, reply)
            }
            RegistryMsg::ReopenOwner(owner, reply) => {
                send(reply, Ok(state.closed.remove(owner.as_str())))
            }
            RegistryMsg::ReleaseOwner(owner, reply) => state.release_owner(owner, reply),
            RegistryMsg::Report(ProcessReport(report)) => {
                if let Some(seq) = state.on_report(report) {
                    // Boxed: the one await of this handler; unboxed, every
                    // message would pay for this arm's large future.
                    Box::pin(state.start_process(&myself, seq)).await
                }
            }
        }
        // Whatever freed a place (an end, a release, a failed start) lets
        // the oldest queued spawns in.
        state.admit_queued(&myself);
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<RegistryMsg>,
        event: SupervisionEvent,
        state: &mut RegistryState,
    ) -> Result<(), ActorProcessingErr> {
        // Never stop because a child did (ractor's default would).
        // A process actor that ends after reporting its handle terminal is
        // the normal case (one per process): it is no longer running
        // anywhere, and its end costs no text.
        match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                state.on_actor_gone(cell.get_id(), || err.to_string())
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => state
                .on_actor_gone(cell.get_id(), || {
                    reason.unwrap_or_else(|| "stopped".to_owned())
                }),
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<RegistryMsg>,
        state: &mut RegistryState,
    ) -> Result<(), ActorProcessingErr> {
        let running = state.table.running_actors().count();
        tracing::debug!(running, "registry stopping; killing every running process");
        // A stopped registry answers nothing, not even from its index.
        state.routes.clear();
        for queued in state.queue.drain(..) {
            send(queued.reply, Err(Error::unavailable(Unavailable::Stopping)));
        }
        // Drain, not stop: requests already forwarded are answered first.
        myself
            .drain_children_and_wait(Some(STOP_CHILDREN_WAIT))
            .await;
        // Spawns forked after the drain began cannot report back: their
        // children are dropped with the books (killed and reaped), and
        // their callers told why.
        for (_, starting) in state.starting.drain() {
            send(
                starting.reply,
                Err(Error::unavailable(Unavailable::Stopping)),
            );
        }
        if let Some(listener) = state.child_signals.take() {
            listener.abort();
        }
        // Everything is killed and reaped: the guard has nothing to do.
        if let Some(guard) = state.guard.take() {
            guard.dismiss().await;
        }
        // Whatever is left in the cgroup (a tree whose actor could not end
        // it in time) is killed now, and the cgroups are removed.
        if let Some(cgroup) = state.cgroup.take() {
            let path = cgroup.path().to_owned();
            match state
                .worker
                .run(move || cgroup.remove(STOP_CGROUP_WAIT))
                .await
            {
                Ok(Ok(())) => tracing::debug!(cgroup = %path.display(), "registry cgroup removed"),
                Ok(Err(err)) => {
                    tracing::error!(cgroup = %path.display(), %err, "cannot remove the registry's cgroup")
                }
                Err(err) => tracing::error!(%err, "cannot remove the registry's cgroup"),
            }
        }
        // Orphans of the trees just killed are zombies of ours now: none
        // outlives the registry.
        if state.config.reap_orphans {
            state.worker.reap_orphans_now().await;
        }
        Ok(())
    }
}

/// Makes the registry's cgroup as `config` asks, on the OS worker's
/// thread. `None` means process-group containment (said in the log).
async fn make_cgroup(
    worker: &'static Worker,
    config: &RegistryConfig,
) -> Result<Option<RegistryCgroup>> {
    if config.cgroup == CgroupMode::Off {
        tracing::info!("containment: process groups (cgroups turned off)");
        return Ok(None);
    }
    let root = config.cgroup_root.clone();
    let made = worker
        .run(move || {
            let base = cgroup::locate(root.as_deref())?;
            cgroup::remove_stale(&base);
            RegistryCgroup::create(&base).map_err(|err| {
                std::io::Error::new(err.kind(), format!("in {}: {err}", base.display()))
            })
        })
        .await?;
    match made {
        Ok(cgroup) => {
            tracing::info!(
                cgroup = %cgroup.path().display(),
                controllers = ?cgroup.controllers(),
                "containment: one cgroup per process tree"
            );
            Ok(Some(cgroup))
        }
        Err(source) if config.cgroup == CgroupMode::Required => Err(Error::Containment {
            operation: "making the registry's cgroup".into(),
            path: config.cgroup_root.clone().unwrap_or_default(),
            source: source.into(),
        }),
        Err(err) => {
            tracing::warn!(
                %err,
                "containment: process groups; no writable cgroup v2 hierarchy, so a descendant \
                 that calls setsid or setpgid leaves its tree"
            );
            Ok(None)
        }
    }
}

fn send<T>(reply: RpcReplyPort<T>, value: T) {
    // A closed port means the caller gave up; that is not our error.
    let _ = reply.send(value);
}

/// Hands a request to a process actor; if the actor is already gone, the
/// caller is told so instead of being left waiting.
fn forward(actor: &ActorRef<ProcessMsg>, message: ProcessMsg) {
    let Err(MessagingErr::SendErr(message)) = actor.cast(message) else {
        return;
    };
    fn no_reply<T>(operation: &'static str) -> Result<T> {
        Err(Error::no_reply(operation))
    }
    match message {
        ProcessMsg::Poll(reply) => send(reply, no_reply("poll")),
        ProcessMsg::Wait(_, reply) => send(reply, no_reply("wait")),
        ProcessMsg::Kill(_, reply) => send(reply, no_reply("kill")),
        ProcessMsg::Read(_, reply) => send(reply, no_reply("read")),
        ProcessMsg::Write(_, reply) => send(reply, no_reply("write")),
        ProcessMsg::CloseStdin(reply) => send(reply, no_reply("close_stdin")),
        ProcessMsg::Subscribe(_, reply) => send(reply, no_reply("subscribe")),
        ProcessMsg::Watch(reply) => send(reply, no_reply("watch")),
        ProcessMsg::Pause(reply) => send(reply, no_reply("pause")),
        ProcessMsg::Resume(reply) => send(reply, no_reply("resume")),
        ProcessMsg::Evict | ProcessMsg::Event(_) => {}
    }
}

fn owner_key(owner: String) -> Owner {
    Some(owner.into())
}

/// Tells the OS worker of every SIGCHLD, so orphans are reaped as they
/// die. Without a signal driver in the runtime, orphans are still reaped
/// at every cleanup pass.
fn listen_for_child_signals(worker: &'static Worker) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let mut signals = match signal(SignalKind::child()) {
            Ok(signals) => signals,
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGCHLD; orphans are reaped at cleanups only");
                return;
            }
        };
        while signals.recv().await.is_some() {
            worker.child_signal();
        }
    })
}

impl RegistryState {
    fn target(&self, id: &HandleId) -> Target<'_> {
        if let Some(entry) = self.table.get(id) {
            return match &entry.state {
                EntryState::Running(actor) => Target::Actor(actor),
                EntryState::Finished(snapshot) => Target::Snapshot(snapshot),
            };
        }
        match self.receipts.get(id).map(|r| &r.state) {
            Some(ReceiptState::Pending(actor)) => Target::Actor(actor),
            Some(ReceiptState::Done(snapshot)) => Target::Snapshot(snapshot),
            None => Target::Unknown,
        }
    }

    /// Sends a request about one handle to whoever answers for it: the
    /// process actor, or the registry itself from a snapshot. `observes`:
    /// the answer carries the terminal status (poll, wait, kill).
    fn route<T: Send + 'static>(
        &mut self,
        id: HandleId,
        reply: RpcReplyPort<Result<T>>,
        to_actor: impl FnOnce(RpcReplyPort<Result<T>>) -> ProcessMsg,
        from_snapshot: impl FnOnce(&Snapshot) -> Result<T>,
        observes: bool,
    ) {
        match self.target(&id) {
            Target::Unknown => send(reply, Err(Error::UnknownHandle(id))),
            Target::Actor(actor) => forward(actor, to_actor(reply)),
            Target::Snapshot(snapshot) => {
                // A request sent without waiting for its answer sees nothing.
                let seen = observes && !reply.is_closed();
                send(reply, from_snapshot(snapshot));
                if seen {
                    self.observe(id);
                }
            }
        }
    }

    /// Records that a caller has seen the handle's terminal status.
    fn observe(&mut self, id: HandleId) {
        self.table.observe(id);
        self.routes.observe(id);
        self.receipts.observe(&id);
    }

    /// Handles a report; the number of a forked spawn is handed back to
    /// be started.
    fn on_report(&mut self, report: Report) -> Option<u64> {
        match report {
            Report::Forked(seq) => return Some(seq),
            Report::Observed(id) => self.observe(id),
            Report::Routes(cell) => {
                // Set once: a cell already set holds this same index.
                let _ = cell.set(self.routes.routes());
            }
            Report::Finished {
                snapshot,
                observed,
                actor,
            } => {
                let id = snapshot.handle_id;
                if self.table.finish((*snapshot).clone(), observed).is_some() {
                    self.routes.finish(&snapshot, observed);
                } else {
                    self.receipts.settle(&id, snapshot.into_receipt(), observed);
                }
                // Answer what is queued for it, then stop. Also for a handle
                // released or expired meanwhile: its actor must not linger.
                let _ = actor.drain();
            }
        }
        None
    }

    /// A process actor ended. If its handle is still running (or pending
    /// as a receipt), the actor died without finishing: the handle turns
    /// terminal as `killed`, with `reason` (built only then) as its
    /// failure.
    fn on_actor_gone(&mut self, actor: ActorId, reason: impl FnOnce() -> String) {
        let containment = self.containment();
        if let Some(id) = self.table.running_handle(&actor) {
            let reason = reason();
            let failure = format!("the process actor ended unexpectedly: {reason}");
            tracing::error!(handle = %id, %reason, "process actor ended without finishing; its tree was killed");
            if let Some(entry) = self.table.get(&id) {
                let snapshot = failed_snapshot(
                    &entry.summary,
                    failure,
                    self.config.clock.now(),
                    containment,
                );
                self.routes.finish(&snapshot, false);
                self.table.finish(snapshot, false);
            }
        } else if let Some(id) = self.receipts.find_pending(|a| a.get_id() == actor) {
            let reason = reason();
            let failure = format!("the process actor ended unexpectedly: {reason}");
            tracing::error!(handle = %id, %reason, "evicted process actor ended without finishing");
            if let Some(receipt) = self.receipts.get(&id) {
                let snapshot = failed_snapshot(
                    &receipt.summary,
                    failure,
                    self.config.clock.now(),
                    containment,
                )
                .into_receipt();
                self.receipts.settle(&id, snapshot, false);
            }
        }
    }

    /// Checks the request and has the OS worker fork the child, off the
    /// registry's own loop; the outcome comes back as `Report::Forked`.
    /// Until then the spawn counts against the concurrency caps.
    fn spawn(
        &mut self,
        myself: &ActorRef<RegistryMsg>,
        mut request: SpawnRequest,
        reply: RpcReplyPort<Result<Snapshot>>,
    ) {
        if let Err(err) = self.prepare(&mut request) {
            return send(reply, Err(err));
        }
        // A limit the registry's cgroup cannot apply is refused now.
        if let Err(err) = self.placement(&request) {
            return send(reply, Err(err));
        }
        let policy = request.cap_policy.unwrap_or(self.config.cap_policy);
        let max_handles = self.config.max_handles;
        match policy {
            CapPolicy::Evict => {}
            CapPolicy::Refuse if self.places_taken() >= max_handles => {
                let full = Error::RegistryFull {
                    max_handles,
                    max_queued: None,
                };
                return send(reply, Err(full));
            }
            CapPolicy::Refuse => {}
            CapPolicy::Queue { max_queued } => {
                // Behind spawns already waiting, so the queue keeps order.
                if self.places_taken() >= max_handles || !self.queue.is_empty() {
                    if self.queue.len() >= max_queued {
                        let full = Error::RegistryFull {
                            max_handles,
                            max_queued: Some(max_queued),
                        };
                        return send(reply, Err(full));
                    }
                    tracing::debug!(queued = self.queue.len() + 1, "registry full; spawn queued");
                    self.queue.push_back(Queued { request, reply });
                    return;
                }
            }
        }
        self.fork(myself, request, reply);
    }

    /// The places of the cap that running handles and spawns still
    /// starting hold: what a spawn that may not evict a running handle
    /// must find below `max_handles`. (Finished handles hold none: they
    /// make room.)
    fn places_taken(&self) -> usize {
        self.table.running_count() + self.starting.len()
    }

    /// Starts the oldest queued spawns while there are places for them.
    fn admit_queued(&mut self, myself: &ActorRef<RegistryMsg>) {
        // A draining registry starts nothing new: its queue is answered
        // `Stopping` when it stops.
        if myself.get_status() != ractor::ActorStatus::Running {
            return;
        }
        while !self.queue.is_empty() && self.places_taken() < self.config.max_handles {
            let Some(Queued { request, reply }) = self.queue.pop_front() else {
                return;
            };
            if reply.is_closed() {
                // The caller gave up while it waited: start nothing.
                continue;
            }
            self.fork(myself, request, reply);
        }
    }

    /// Has the OS worker fork a spawn that passed every check.
    fn fork(
        &mut self,
        myself: &ActorRef<RegistryMsg>,
        mut request: SpawnRequest,
        reply: RpcReplyPort<Result<Snapshot>>,
    ) {
        let placement = match self.placement(&request) {
            Ok(placement) => placement,
            Err(err) => return send(reply, Err(err)),
        };
        // The token marks the tree for escapee hunting and for the guard,
        // which a cgroup does better where there is one.
        let tokens = self.cgroup.is_none() && (self.config.kill_escapees || self.config.guard);
        let token = tokens.then(|| {
            let token = format!("{}{}", self.token_prefix, self.next_token);
            self.next_token += 1;
            request
                .env
                .push((escapees::TOKEN_VAR.to_owned(), token.clone()));
            token
        });
        let escapee_token = token.filter(|_| self.config.kill_escapees);
        let seq = self.next_spawn;
        self.next_spawn += 1;
        let owner: Owner = request.owner.clone().and_then(owner_key);
        *self.starting_of.entry(owner.clone()).or_default() += 1;
        let (outcome_tx, outcome) = tokio::sync::oneshot::channel();
        self.starting.insert(
            seq,
            Starting {
                owner,
                kills: Vec::new(),
                outcome,
                escapee_token,
                reply,
            },
        );
        let registry = myself.clone();
        // The spawner thread sends the outcome into the registry's books,
        // then tells the registry. If the registry is gone, its books went
        // with it: the send fails and drops the child, whose drop kills and
        // reaps it; the caller's port went with the books.
        self.worker.spawn_then(request, placement, move |result| {
            if outcome_tx.send(result).is_ok() {
                let _ = registry.cast(RegistryMsg::Report(ProcessReport(Report::Forked(seq))));
            }
        });
    }

    /// Where the spawn's tree goes: a cgroup of its own under the
    /// registry's, with its limits, when the registry has a cgroup. A limit
    /// whose controller is not enabled there (or any limit, without a
    /// cgroup) is refused with the rule [`DenyRule::Limit`].
    fn placement(&self, request: &SpawnRequest) -> Result<Option<Placement>> {
        let limits = request.limits.cgroup();
        let Some(cgroup) = &self.cgroup else {
            if limits.is_empty() {
                return Ok(None);
            }
            return Err(Error::PolicyDenied {
                rule: DenyRule::Limit,
                reason: "memory_max, pids_max and cpu_max need cgroup containment, \
                         which this registry does not have"
                    .to_owned(),
            });
        };
        if let Some((limit, controller)) = cgroup.controllers().missing_for(&limits) {
            return Err(Error::PolicyDenied {
                rule: DenyRule::Limit,
                reason: format!(
                    "limits.{limit} needs the cgroup {controller} controller, which is not \
                     enabled in {}",
                    cgroup.path().display()
                ),
            });
        }
        Ok(Some(Placement {
            parent: cgroup.path().to_owned(),
            name: format!("t{}", self.next_spawn),
            limits,
        }))
    }

    /// How this registry contains its trees.
    fn containment(&self) -> Containment {
        match self.cgroup {
            Some(_) => Containment::Cgroup,
            None => Containment::ProcessGroup,
        }
    }

    /// Takes a spawn off the books of spawns starting.
    fn started(&mut self, seq: u64) -> Option<Starting> {
        let starting = self.starting.remove(&seq)?;
        if let Some(count) = self.starting_of.get_mut(&starting.owner) {
            *count -= 1;
            if *count == 0 {
                self.starting_of.remove(&starting.owner);
            }
        }
        Some(starting)
    }

    /// Validates the request, runs the policy on it, and validates what the
    /// policy made of it.
    fn prepare(&self, request: &mut SpawnRequest) -> Result<()> {
        request.validate()?;
        self.apply_policy(request)?;
        request.validate()
    }

    /// Starts the process actor of a forked child, makes room for it, and
    /// answers the spawn; then sends it the kills a `KillOwner` asked for
    /// while it was starting.
    async fn start_process(&mut self, myself: &ActorRef<RegistryMsg>, seq: u64) {
        let Some(Starting {
            mut outcome,
            kills,
            escapee_token,
            reply,
            ..
        }) = self.started(seq)
        else {
            return;
        };
        let result = match outcome.try_recv() {
            Ok(result) => result,
            // Sent before `Forked` was: cannot happen.
            Err(_) => Err(Error::no_reply("spawn")),
        };
        let result = match result {
            Ok((request, spawned)) => {
                self.register(myself, *request, escapee_token, spawned)
                    .await
            }
            Err(err) => Err(err),
        };
        if let Ok(snapshot) = &result
            && let Some(EntryState::Running(actor)) =
                self.table.get(&snapshot.handle_id).map(|e| &e.state)
        {
            for (request, port) in kills {
                forward(actor, ProcessMsg::Kill(request, port));
            }
        }
        send(reply, result);
    }

    async fn register(
        &mut self,
        myself: &ActorRef<RegistryMsg>,
        request: SpawnRequest,
        escapee_token: Option<String>,
        spawned: RawSpawned,
    ) -> Result<Snapshot> {
        let spawned = spawned.register()?;
        let policy = request.cap_policy.unwrap_or(self.config.cap_policy);
        let pid = spawned.child.pid();
        let handle_id = HandleId::next(pid);
        let command: Arc<str> = request.display().into();
        let owner: Owner = request.owner.clone().and_then(owner_key);
        let started_at = self.config.clock.now();
        let actor = ProcessActor {
            id: handle_id,
            command: command.clone(),
            owner: owner.clone(),
            started_at,
            escapee_token: escapee_token.map(String::into_boxed_str),
            settings: self.process_settings.clone(),
        };
        let args = ProcessArgs {
            spawned,
            timeout: request.timeout,
            output_cap: request.output_cap.unwrap_or(self.config.output_cap),
            stdin: request.stdin,
            subscribers: request.subscribers,
        };
        // If the actor fails to start, `args` (and the child in it) is
        // dropped, which kills and reaps the child.
        let (actor, _) = Actor::spawn_linked(None, actor, args, myself.get_cell())
            .await
            .map_err(|err| Error::actor_start("process", err))?;
        // Make room only now: a spawn that fails must not cost another
        // handle its place.
        self.make_room(&owner, policy);
        let snapshot = Snapshot::started(
            handle_id,
            pid,
            command,
            started_at,
            owner,
            self.containment(),
        );
        self.routes.insert(handle_id, actor.clone());
        self.table.insert_running(running_summary(&snapshot), actor);
        tracing::debug!(handle = %handle_id, pid, "spawned");
        Ok(snapshot)
    }

    /// Runs the registry's policy, then the requested profile's, on the
    /// request. Nothing has been started yet.
    fn apply_policy(&self, request: &mut SpawnRequest) -> Result<()> {
        let owner_key: Owner = request.owner.clone().and_then(owner_key);
        if let Some(owner) = &owner_key
            && self.closed.contains(owner)
        {
            return Err(Error::PolicyDenied {
                rule: DenyRule::OwnerClosed,
                reason: format!("owner {owner:?} is closed; reopen it to spawn for it"),
            });
        }
        let owner = request.owner.clone();
        // Spawns still starting count: a burst gets exactly the cap.
        let context = PolicyContext {
            owner: owner.as_deref(),
            running_total: self.table.running_count() + self.starting.len(),
            running_of_owner: self.table.running_of(&owner_key).len()
                + self.starting_of.get(&owner_key).copied().unwrap_or(0),
        };
        let denied = |denied: Denied| Error::PolicyDenied {
            rule: denied.rule,
            reason: denied.reason,
        };
        self.config
            .policy
            .check(request, &context)
            .map_err(denied)?;
        if let Some(name) = request.sandbox_profile.clone() {
            let profile = self
                .config
                .profiles
                .get(&name)
                .ok_or_else(|| Error::PolicyDenied {
                    rule: DenyRule::Profile,
                    reason: format!("unknown sandbox profile {name:?}"),
                })?;
            profile.check(request, &context).map_err(denied)?;
        }
        Ok(())
    }

    /// Evicts until there is room for one more handle; each evicted handle
    /// leaves a receipt. See [`RegistryMsg::Spawn`] for the order. A spawn
    /// whose policy is not `Evict` never evicts a running handle: it was
    /// admitted with a place free, and only an `Evict` spawn of another
    /// policy racing it can have taken that place, in which case the table
    /// holds one more than the cap until a handle ends.
    fn make_room(&mut self, owner: &Owner, policy: CapPolicy) {
        while self.table.len() >= self.config.max_handles {
            let candidate = match policy {
                CapPolicy::Evict => self.table.eviction_candidate(owner),
                CapPolicy::Refuse | CapPolicy::Queue { .. } => {
                    self.table.finished_eviction_candidate(owner)
                }
            };
            let Some(id) = candidate else {
                return;
            };
            let Some(entry) = self.table.remove(&id) else {
                return;
            };
            self.routes.remove(id);
            let mut summary = entry.summary;
            summary.evicted = true;
            let receipt = match entry.state {
                EntryState::Finished(snapshot) => {
                    tracing::debug!(handle = %id, "evicted a finished handle");
                    Receipt {
                        summary,
                        state: ReceiptState::Done(Box::new(snapshot.into_receipt())),
                        observed: entry.observed,
                    }
                }
                EntryState::Running(actor) => {
                    tracing::warn!(
                        handle = %id,
                        max_handles = self.config.max_handles,
                        "registry full of running processes: killing and evicting one"
                    );
                    // It kills its tree and keeps answering (with receipts)
                    // until it reports the end.
                    let _ = actor.cast(ProcessMsg::Evict);
                    Receipt {
                        summary,
                        state: ReceiptState::Pending(actor),
                        observed: false,
                    }
                }
            };
            for dropped in self.receipts.insert(receipt) {
                if !dropped.observed {
                    tracing::warn!(
                        handle = %dropped.summary.handle_id,
                        status = %dropped.summary.status,
                        "dropping the receipt of a handle whose end nobody has seen"
                    );
                }
            }
        }
    }

    fn release(&mut self, id: HandleId, reply: RpcReplyPort<Result<bool>>) {
        self.routes.remove(id);
        let actor = match self.table.remove(&id) {
            Some(entry) => match entry.state {
                EntryState::Running(actor) => Some(actor),
                EntryState::Finished(_) => None,
            },
            None => match self.receipts.remove(&id) {
                Some(receipt) => match receipt.state {
                    ReceiptState::Pending(actor) => Some(actor),
                    ReceiptState::Done(_) => None,
                },
                None => return send(reply, Ok(false)),
            },
        };
        let Some(actor) = actor else {
            return send(reply, Ok(true));
        };
        tracing::debug!(handle = %id, "released while running; killing its tree");
        // Requests sent before the release are answered first (drain keeps
        // their order); the tree dies in the actor's post_stop. The answer
        // comes once it is reaped, without making the registry wait.
        let _ = actor.drain();
        tokio::spawn(async move {
            let _ = actor.wait(None).await;
            send(reply, Ok(true));
        });
    }

    fn list(&self, filter: &ListFilter) -> Vec<HandleSummary> {
        let mut all = self.table.summaries(filter);
        all.extend(self.receipts.summaries(filter));
        all.sort_by_key(|s| s.handle_id);
        all
    }

    fn counts(&self) -> HandleCounts {
        let running = self.table.running_count();
        HandleCounts {
            running,
            terminal: self.table.len() - running + self.receipts.len(),
            starting: self.starting.len(),
            queued: self.queue.len(),
        }
    }

    fn kill_owner(
        &mut self,
        owner: String,
        request: KillRequest,
        reply: RpcReplyPort<Result<Vec<Snapshot>>>,
    ) {
        let cancelled = owner.clone();
        let owner = owner_key(owner);
        // Queued spawns of the owner never start.
        let (dropped, kept): (VecDeque<Queued>, VecDeque<Queued>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|q| q.request.owner.as_deref() == owner.as_deref());
        self.queue = kept;
        for queued in dropped {
            send(
                queued.reply,
                Err(Error::SpawnCancelled {
                    owner: cancelled.clone(),
                }),
            );
        }
        let mut answers = Vec::new();
        for id in self.table.running_of(&owner) {
            if let Some(EntryState::Running(actor)) = self.table.get(&id).map(|e| &e.state) {
                let (tx, rx) = oneshot();
                forward(actor, ProcessMsg::Kill(request, tx.into()));
                answers.push(rx);
            }
        }
        // Spawns of the owner still starting are killed once they run.
        for starting in self.starting.values_mut() {
            if starting.owner == owner {
                let (tx, rx) = oneshot();
                starting.kills.push((request, tx.into()));
                answers.push(rx);
            }
        }
        // Every kill is already on its way; collect the answers off the
        // registry's own loop.
        tokio::spawn(async move {
            let mut killed = Vec::with_capacity(answers.len());
            for answer in answers {
                if let Ok(Ok(snapshot)) = answer.await {
                    killed.push(snapshot);
                }
            }
            send(reply, Ok(killed));
        });
    }

    fn release_owner(&mut self, owner: String, reply: RpcReplyPort<Result<usize>>) {
        let owner = owner_key(owner);
        let mut released = 0;
        let mut dying = Vec::new();
        for id in self.table.all_of(&owner) {
            if let Some(entry) = self.table.remove(&id) {
                self.routes.remove(id);
                released += 1;
                if let EntryState::Running(actor) = entry.state {
                    let _ = actor.drain();
                    dying.push(actor);
                }
            }
        }
        for id in self.receipts.all_of(&owner) {
            if let Some(receipt) = self.receipts.remove(&id) {
                released += 1;
                if let ReceiptState::Pending(actor) = receipt.state {
                    let _ = actor.drain();
                    dying.push(actor);
                }
            }
        }
        tokio::spawn(async move {
            for actor in dying {
                let _ = actor.wait(None).await;
            }
            send(reply, Ok(released));
        });
    }
}

/// The terminal snapshot of a handle whose process actor died: its tree was
/// killed when the actor's state was dropped; its output died with it.
fn failed_snapshot(
    summary: &HandleSummary,
    failure: String,
    ended_at: time::OffsetDateTime,
    containment: Containment,
) -> Snapshot {
    let mut snapshot = Snapshot::started(
        summary.handle_id,
        summary.pid,
        summary.command.clone(),
        summary.started_at,
        summary.owner.clone(),
        containment,
    );
    snapshot.status = Status::Killed;
    snapshot.ended_at = Some(ended_at);
    snapshot.failure = Some(failure);
    snapshot.evicted = summary.evicted;
    snapshot
}
