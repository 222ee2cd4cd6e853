//! The process actor: one per OS process. It owns the child, its captured
//! output and its lifecycle, and answers Poll / Wait / Kill with snapshots.
//!
//! The actor never awaits inside a message handler. Its own tasks (one I/O
//! task that reads both pipes and watches for the exit, timers) report to
//! it as
//! [`ProcessMsg::Event`]s, so a pending wait never delays a kill or a poll.
//!
//! The lifecycle itself (which status settles, when the drain ends, when
//! the tree is swept and the child reaped) is the pure state machine of
//! [`super::lifecycle`]; this actor feeds it what happens and carries out
//! the effects it returns. What never changes for the process lives in
//! [`ProcessActor`] itself; what changes is [`ProcessState`].
//!
//! Every byte the tree wrote to its pipes before the drain ended is in the
//! terminal snapshot (or counted as dropped by the cap): the group is
//! SIGKILLed while the child is unreaped, the readers read what the pipes
//! hold, and only then is the child reaped and the handle made terminal.

use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rustix::process::Signal as RawSignal;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};

use super::capture::Captures;
use super::handle_table::Owner;
use super::lifecycle::{Effect, Effects, Lifecycle};
use super::output_reader::run_io;
use super::stdin_writer::{StdinCommand, write_stdin};
use super::subscribers::{Subscribers, exit_only};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::messages::ResourceUsage;
use crate::messages::{
    Event, HandleId, KillRequest, Offsets, OutputStream, PUBLISH_INTERVAL, ProcessEvent,
    ProcessMsg, ProcessReport, ReadChunk, ReadRequest, RegistryMsg, Report, Snapshot,
    SnapshotWatch, Status, Stdin, SubscribeRequest, Subscribed, WaitOutcome,
};
use crate::os::cgroup::TreeUsage;
use crate::os::child::{ChildProcess, ExitInfo, Spawned};
use crate::os::worker::{Cleanup, worker};

/// How long the actor's stop waits for a killed child to exit before it
/// leaves the reaping to [`ChildProcess`]'s drop.
const STOP_REAP_WAIT: Duration = Duration::from_secs(5);

/// The actor owning one OS process, with what never changes about it.
/// Only the registry starts it.
pub(crate) struct ProcessActor {
    pub(crate) id: HandleId,
    pub(crate) command: Arc<str>,
    pub(crate) owner: Owner,
    pub(crate) started_at: OffsetDateTime,
    /// In escapee-hunting mode, the token in the tree's environment.
    pub(crate) escapee_token: Option<Box<str>>,
    /// What is the same for every process of the registry: one allocation
    /// shared by all, not a copy in each actor's task.
    pub(crate) settings: Arc<ProcessSettings>,
}

/// The registry's settings that each of its process actors reads.
#[derive(Debug)]
pub(crate) struct ProcessSettings {
    pub(crate) drain_grace: Duration,
    pub(crate) kill_grace: Duration,
    pub(crate) reap_orphans: bool,
    pub(crate) clock: Clock,
    pub(crate) registry: ActorRef<RegistryMsg>,
}

/// What the registry hands a new process actor to own.
pub(crate) struct ProcessArgs {
    pub(crate) spawned: Spawned,
    pub(crate) timeout: Option<Duration>,
    pub(crate) output_cap: usize,
    pub(crate) stdin: Stdin,
    /// Subscriptions made with the spawn: attached before any output is
    /// handled, so they get every byte from offset 0.
    pub(crate) subscribers: Vec<SubscribeRequest>,
}

struct Waiter {
    id: u64,
    port: RpcReplyPort<Result<WaitOutcome>>,
    timer: Option<JoinHandle<()>>,
}

/// Everything that changes about one process; owned by its actor alone.
///
/// It lives in the actor's task for as long as the process runs, beside
/// ractor's own ports: what every process needs is here, what only some
/// need (a caller waiting, a piped stdin, a timer) is in [`Extras`], made
/// on first use. A quiet `sleep` then costs a 896-byte task cell instead
/// of 1,152 (measured by the `memory` bench group).
pub(crate) struct ProcessState {
    lifecycle: Lifecycle,
    child: ChildProcess,
    /// Both streams' captures; nothing until the first byte arrives.
    output: Captures,
    /// Fired when the drain is over: the I/O task reads what the pipes
    /// hold, then closes them. A one-shot costs a sixth of a watch
    /// channel, and the drain ends once.
    drain_now: Option<oneshot::Sender<()>>,
    /// The I/O task: aborted when terminal.
    io: JoinHandle<()>,
    /// The registry evicted this handle while it ran: answers are receipts.
    evicted: bool,
    extras: Option<Box<Extras>>,
}

/// What only some processes need, made on first use.
#[derive(Default)]
struct Extras {
    stdin: StdinLink,
    subscribers: Subscribers,
    waiters: Vec<Waiter>,
    next_waiter: u64,
    killers: Vec<RpcReplyPort<Result<Snapshot>>>,
    /// Timers (the spawn timeout, kill escalation, drain grace, publish,
    /// waits) and the sweep: aborted when terminal.
    tasks: Vec<JoinHandle<()>>,
    /// The published snapshot, made on the first `Watch`: processes nobody
    /// watches publish nothing.
    watch: Option<SnapshotWatch>,
    /// A `Publish` event is on its way.
    publish_pending: bool,
    /// What the tree's cgroup counted, read when it emptied.
    tree_usage: Option<ResourceUsage>,
}

impl ProcessState {
    /// The extras, made now if this is their first use.
    fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// The published snapshot's watch, if someone asked for one.
    fn watch(&self) -> Option<&SnapshotWatch> {
        self.extras.as_ref()?.watch.as_ref()
    }

    /// A timer or the sweep, aborted when terminal.
    fn add_task(&mut self, task: JoinHandle<()>) {
        self.extras().tasks.push(task);
    }
}

impl Actor for ProcessActor {
    type Msg = ProcessMsg;
    type State = ProcessState;
    type Arguments = ProcessArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ProcessMsg>,
        args: ProcessArgs,
    ) -> Result<ProcessState, ActorProcessingErr> {
        let Spawned {
            child,
            stdout,
            stderr,
            stdin: stdin_pipe,
        } = args.spawned;
        // On any error below, `child` is dropped: its group is killed and it
        // is reaped, so a failed start leaks nothing.
        let exited = child.exit_watch()?;
        let (drain_now, drain_rx) = oneshot::channel();
        let io = tokio::spawn(run_io(exited, stdout, stderr, myself.clone(), drain_rx));
        let mut extras: Option<Box<Extras>> = None;
        if let Some(timeout) = args.timeout {
            let extras = extras.get_or_insert_with(Box::default);
            extras
                .tasks
                .push(timer(&myself, timeout, Event::TimeoutExpired));
        }
        let stdin = stdin_pipe.map(|pipe| {
            let initial = match args.stdin {
                Stdin::Bytes(bytes) => Some(bytes),
                Stdin::Null | Stdin::Pipe => None,
            };
            let (commands, rx) = mpsc::unbounded_channel();
            let (ended, ended_rx) = watch::channel(false);
            // Not in `tasks`: it must answer every queued command, so it is
            // told of the end instead of aborted, and ends by itself.
            tokio::spawn(write_stdin(self.id, pipe, initial, rx, ended_rx));
            StdinLink::Open { commands, ended }
        });
        if let Some(stdin) = stdin {
            extras.get_or_insert_with(Box::default).stdin = stdin;
        }
        // In the state before the first message is handled: the readers'
        // first chunk finds them subscribed.
        for subscription in args.subscribers {
            let extras = extras.get_or_insert_with(Box::default);
            extras.subscribers.add(subscription);
        }
        tracing::debug!(handle = %self.id, pid = child.pid(), command = %self.command, "process started");
        Ok(ProcessState {
            lifecycle: Lifecycle::new(self.cleanup(&child).is_some()),
            child,
            output: Captures::new(args.output_cap),
            drain_now: Some(drain_now),
            io,
            evicted: false,
            extras,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ProcessMsg>,
        message: ProcessMsg,
        state: &mut ProcessState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ProcessMsg::Poll(reply) => {
                let snapshot = self.snapshot(state);
                if snapshot.status.is_terminal() {
                    self.note_observed(state);
                }
                let _ = reply.send(Ok(snapshot));
            }
            ProcessMsg::Evict => self.evict(&myself, state),
            ProcessMsg::Pause(reply) => {
                let _ = reply.send(Ok(self.pause(&myself, state, true)));
            }
            ProcessMsg::Resume(reply) => {
                let _ = reply.send(Ok(self.pause(&myself, state, false)));
            }
            ProcessMsg::Wait(timeout, reply) => self.wait(&myself, state, timeout, reply),
            ProcessMsg::Kill(request, reply) => self.kill(&myself, state, request, reply),
            ProcessMsg::Read(request, reply) => {
                let _ = reply.send(self.read(state, &request));
            }
            ProcessMsg::Write(bytes, reply) => {
                self.stdin_command(state, StdinCommand::Write(bytes, reply))
            }
            ProcessMsg::CloseStdin(reply) => self.stdin_command(state, StdinCommand::Close(reply)),
            ProcessMsg::Subscribe(request, reply) => {
                let _ = reply.send(subscribe(self.id, state, request));
            }
            ProcessMsg::Watch(reply) => {
                let _ = reply.send(Ok(self.watch(state)));
            }
            ProcessMsg::Event(ProcessEvent(event)) => self.on_event(&myself, state, event)?,
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<ProcessMsg>,
        state: &mut ProcessState,
    ) -> Result<(), ActorProcessingErr> {
        if state.lifecycle.terminal().is_none() {
            self.stop_now(&myself, state).await;
        }
        Ok(())
    }
}

/// The process actor's side of a piped stdin.
#[derive(Default)]
enum StdinLink {
    /// stdin is `/dev/null`.
    #[default]
    NotPiped,
    /// The writer task takes commands, in order.
    Open {
        commands: mpsc::UnboundedSender<StdinCommand>,
        /// Turned true when the process is terminal.
        ended: watch::Sender<bool>,
    },
    /// The process is terminal; stdin is closed for good.
    Ended,
}

/// Sends `event` to `actor` after `delay`, unless aborted first.
fn timer(actor: &ActorRef<ProcessMsg>, delay: Duration, event: Event) -> JoinHandle<()> {
    let actor = actor.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = actor.cast(event.into());
    })
}

/// Adds a subscriber; with `from`, replays the capture from there first.
fn subscribe(
    id: HandleId,
    state: &mut ProcessState,
    request: SubscribeRequest,
) -> Result<Subscribed> {
    if let Some(terminal) = state.lifecycle.terminal() {
        return exit_only(request, terminal);
    }
    let totals = Offsets {
        stdout: state.output.total(OutputStream::Stdout),
        stderr: state.output.total(OutputStream::Stderr),
    };
    let output = &state.output;
    let read = |request: &ReadRequest| {
        output.read(request, false).ok_or(Error::OffsetOutOfRange {
            handle: id,
            stream: request.stream.as_str().into(),
            offset: request.offset,
            total: output.total(request.stream),
        })
    };
    let subscribers = &mut state.extras.get_or_insert_with(Box::default).subscribers;
    subscribers.subscribe(id, request, totals, read)
}

impl ProcessActor {
    /// The current snapshot: the terminal one once there is one.
    fn snapshot(&self, state: &mut ProcessState) -> Snapshot {
        if let Some(terminal) = state.lifecycle.terminal() {
            return terminal.clone();
        }
        let mut snapshot = Snapshot::started(
            self.id,
            state.child.pid(),
            self.command.clone(),
            self.started_at,
            self.owner.clone(),
            state.child.containment(),
        );
        snapshot.stdout = state.output.view(OutputStream::Stdout);
        snapshot.stderr = state.output.view(OutputStream::Stderr);
        snapshot.paused = state.lifecycle.paused();
        if state.evicted {
            snapshot.into_receipt()
        } else {
            snapshot
        }
    }

    /// Records that a caller was given the terminal snapshot, telling the
    /// registry the first time.
    fn note_observed(&self, state: &mut ProcessState) {
        if state.lifecycle.observe() {
            let _ = self
                .settings
                .registry
                .cast(RegistryMsg::Report(ProcessReport(Report::Observed(
                    self.id,
                ))));
        }
    }

    /// Carries out what a transition of the lifecycle asks for, in order.
    fn apply(&self, myself: &ActorRef<ProcessMsg>, state: &mut ProcessState, effects: Effects) {
        for effect in effects {
            match effect {
                Effect::Signal(signal) => self.signal(state, signal),
                Effect::ArmEscalation(grace) => {
                    let grace = grace.unwrap_or(self.settings.kill_grace);
                    state.add_task(timer(myself, grace, Event::EscalateKill));
                }
                Effect::ArmDrainGrace => {
                    state.add_task(timer(
                        myself,
                        self.settings.drain_grace,
                        Event::DrainExpired,
                    ));
                }
                Effect::FlushPipes => {
                    if let Some(drain_now) = state.drain_now.take() {
                        let _ = drain_now.send(());
                    }
                }
                Effect::Sweep => {
                    let Some(cleanup) = self.cleanup(&state.child) else {
                        // Cannot happen: the lifecycle sweeps only when
                        // there is a cleanup. Reap at once.
                        return self.reap_and_end(myself, state);
                    };
                    let actor = myself.clone();
                    state.add_task(tokio::spawn(async move {
                        let usage = match worker() {
                            Ok(worker) => worker.cleanup(cleanup).await.map(tree_usage),
                            Err(_) => None,
                        };
                        let _ = actor.cast(Event::SweepDone(usage).into());
                    }));
                }
                Effect::Reap => self.reap_and_end(myself, state),
                Effect::Publish => self.publish(state),
            }
        }
    }

    /// Stops (`SIGSTOP`) or continues (`SIGCONT`) the whole group, or
    /// freezes or thaws the tree's cgroup (escapees included) under cgroup
    /// containment. The status stays `running`; snapshots say `paused`. A
    /// no-op on a terminal handle, or once the child has exited.
    fn pause(
        &self,
        myself: &ActorRef<ProcessMsg>,
        state: &mut ProcessState,
        pause: bool,
    ) -> Snapshot {
        let effects = state.lifecycle.pause(pause);
        if !effects.is_empty() {
            tracing::debug!(handle = %self.id, paused = pause, "process tree paused or resumed");
        }
        self.apply(myself, state, effects);
        self.snapshot(state)
    }

    /// The handle's watch, made now if nobody asked before.
    fn watch(&self, state: &mut ProcessState) -> SnapshotWatch {
        if let Some(watch) = state.watch() {
            return watch.clone();
        }
        let watch = SnapshotWatch::new(self.snapshot(state));
        state.extras().watch = Some(watch.clone());
        watch
    }

    /// Publishes the current snapshot to the watch, if there is one.
    fn publish(&self, state: &mut ProcessState) {
        if state.watch().is_some() {
            let snapshot = self.snapshot(state);
            if let Some(watch) = state.watch() {
                watch.publish(snapshot);
            }
        }
    }

    /// The registry evicted this running handle: kill the tree and answer
    /// with receipts from now on.
    fn evict(&self, myself: &ActorRef<ProcessMsg>, state: &mut ProcessState) {
        if state.lifecycle.terminal().is_some() {
            return;
        }
        state.evicted = true;
        self.notice_exit(myself, state);
        let effects = state.lifecycle.force_end(Status::Killed);
        self.apply(myself, state, effects);
    }

    fn read(&self, state: &ProcessState, request: &ReadRequest) -> Result<ReadChunk> {
        if let Some(terminal) = state.lifecycle.terminal() {
            return terminal.read(request);
        }
        state
            .output
            .read(request, false)
            .ok_or(Error::OffsetOutOfRange {
                handle: self.id,
                stream: request.stream.as_str().into(),
                offset: request.offset,
                total: state.output.total(request.stream),
            })
    }

    /// Hands a write or close to the stdin writer, which answers it.
    fn stdin_command(&self, state: &ProcessState, command: StdinCommand) {
        let refuse = |command: StdinCommand, error: Error| match command {
            StdinCommand::Write(_, reply) => {
                let _ = reply.send(Err(error));
            }
            // Closing what is already closed is a no-op.
            StdinCommand::Close(reply) => {
                let _ = reply.send(match error {
                    Error::StdinClosed(_) => Ok(()),
                    other => Err(other),
                });
            }
        };
        let stdin = state.extras.as_ref().map(|e| &e.stdin);
        match stdin.unwrap_or(&StdinLink::NotPiped) {
            StdinLink::NotPiped => refuse(command, Error::StdinNotPiped(self.id)),
            StdinLink::Ended => refuse(command, Error::StdinClosed(self.id)),
            StdinLink::Open { commands, .. } => {
                if let Err(mpsc::error::SendError(command)) = commands.send(command) {
                    refuse(command, Error::StdinClosed(self.id));
                }
            }
        }
    }

    fn wait(
        &self,
        myself: &ActorRef<ProcessMsg>,
        state: &mut ProcessState,
        timeout: Option<Duration>,
        reply: RpcReplyPort<Result<WaitOutcome>>,
    ) {
        if let Some(terminal) = state.lifecycle.terminal() {
            let outcome = WaitOutcome {
                snapshot: terminal.clone(),
                timed_out: false,
            };
            // Tell the registry before the caller can act on the answer.
            self.note_observed(state);
            let _ = reply.send(Ok(outcome));
            return;
        }
        // Callers that gave up (their future was dropped) leave closed ports
        // behind; drop them here so waits on a long process stay bounded.
        let extras = state.extras();
        extras.waiters.retain(|w| {
            let open = !w.port.is_closed();
            if !open && let Some(timer) = &w.timer {
                timer.abort();
            }
            open
        });
        let id = extras.next_waiter;
        extras.next_waiter += 1;
        let timer = timeout.map(|t| timer(myself, t, Event::WaitExpired(id)));
        extras.waiters.push(Waiter {
            id,
            port: reply,
            timer,
        });
    }

    fn kill(
        &self,
        myself: &ActorRef<ProcessMsg>,
        state: &mut ProcessState,
        request: KillRequest,
        reply: RpcReplyPort<Result<Snapshot>>,
    ) {
        if let Some(terminal) = state.lifecycle.terminal() {
            let snapshot = terminal.clone();
            if !reply.is_closed() {
                self.note_observed(state);
            }
            let _ = reply.send(Ok(snapshot));
            return;
        }
        let killers = &mut state.extras().killers;
        killers.retain(|port| !port.is_closed());
        killers.push(reply);
        self.notice_exit(myself, state);
        let effects = state.lifecycle.kill(request.signal, request.grace);
        self.apply(myself, state, effects);
    }

    fn on_event(
        &self,
        myself: &ActorRef<ProcessMsg>,
        state: &mut ProcessState,
        event: Event,
    ) -> Result<(), ActorProcessingErr> {
        if state.lifecycle.terminal().is_some() {
            // Late output, timers and closes after the end change nothing.
            return Ok(());
        }
        let effects = match event {
            Event::Output { stream, chunk, .. } => {
                let offset = state.output.total(stream);
                state.output.push(stream, chunk.clone());
                if let Some(extras) = &mut state.extras {
                    extras.subscribers.chunk(self.id, stream, offset, &chunk);
                    if extras.watch.is_some() && !extras.publish_pending {
                        // Publishing joins the kept output: at most once per
                        // interval, however fast the output comes.
                        extras.publish_pending = true;
                        extras
                            .tasks
                            .push(timer(myself, PUBLISH_INTERVAL, Event::Publish));
                    }
                }
                Vec::new()
            }
            Event::Publish => {
                state.extras().publish_pending = false;
                vec![Effect::Publish]
            }
            Event::StreamClosed(stream) => {
                tracing::trace!(handle = %self.id, stream = stream.as_str(), "stream closed");
                state.lifecycle.stream_closed()
            }
            Event::LeaderExited => {
                tracing::debug!(handle = %self.id, "process exited");
                state.lifecycle.leader_exited_now()
            }
            Event::WatchFailed(err) => {
                return Err(format!("watching process {} failed: {err}", self.id).into());
            }
            Event::DrainExpired => {
                tracing::debug!(handle = %self.id, "drain grace passed; killing what is left of the group");
                state.lifecycle.drain_expired()
            }
            Event::TimeoutExpired => {
                self.notice_exit(myself, state);
                let effects = state.lifecycle.force_end(Status::TimedOut);
                if effects.contains(&Effect::Signal(RawSignal::KILL)) {
                    tracing::info!(handle = %self.id, "spawn timeout passed; killing the process tree");
                }
                effects
            }
            Event::EscalateKill => {
                tracing::debug!(handle = %self.id, "kill grace passed");
                state.lifecycle.escalate()
            }
            Event::SweepDone(usage) => {
                state.extras().tree_usage = usage;
                state.lifecycle.sweep_done()
            }
            Event::WaitExpired(id) => {
                let waiters = &mut state.extras().waiters;
                if let Some(pos) = waiters.iter().position(|w| w.id == id) {
                    let waiter = waiters.swap_remove(pos);
                    let _ = waiter.port.send(Ok(WaitOutcome {
                        snapshot: self.snapshot(state),
                        timed_out: true,
                    }));
                }
                Vec::new()
            }
        };
        self.apply(myself, state, effects);
        Ok(())
    }

    /// Checks, without waiting, whether the child exited before its exit
    /// event arrived, and handles the exit now if so: a kill of a child
    /// that already exited must not settle `killed`.
    fn notice_exit(&self, myself: &ActorRef<ProcessMsg>, state: &mut ProcessState) {
        if state.lifecycle.leader_exited() {
            return;
        }
        match state.child.peek_exit() {
            Ok(Some(_)) => {
                let effects = state.lifecycle.leader_exited_now();
                self.apply(myself, state, effects);
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(handle = %self.id, %err, "checking for the child's exit failed")
            }
        }
    }

    /// Signals the group. Under cgroup containment, `SIGSTOP` and
    /// `SIGCONT` freeze and thaw the cgroup instead (a stop signal would miss
    /// the members that left the group), and `SIGKILL` also kills it.
    fn signal(&self, state: &ProcessState, signal: RawSignal) {
        if matches!(signal, RawSignal::STOP | RawSignal::CONT)
            && state.child.freeze(signal == RawSignal::STOP)
        {
            return;
        }
        if let Err(err) = state.child.signal_group(signal) {
            tracing::warn!(handle = %self.id, ?signal, %err, "signalling the process group failed");
        }
    }

    /// What the OS worker must do before the child is reaped, if anything:
    /// empty and remove the tree's cgroup (cgroup containment), sweep the
    /// group's orphans (orphan-reaping mode: a cgroup's `populated 0`
    /// comes before its last members' orphans are handed to us, so the
    /// sweep still waits for those) and kill the escapees (escapee mode,
    /// process groups only).
    fn cleanup(&self, child: &ChildProcess) -> Option<Cleanup> {
        let cgroup = child.cgroup_path().map(ToOwned::to_owned);
        (cgroup.is_some() || self.settings.reap_orphans || self.escapee_token.is_some()).then(
            || Cleanup {
                leader: child.pid(),
                sweep_group: self.settings.reap_orphans,
                token: self.escapee_token.as_deref().map(str::to_owned),
                cgroup,
            },
        )
    }

    fn reap_and_end(&self, myself: &ActorRef<ProcessMsg>, state: &mut ProcessState) {
        let exit = match state.child.reap() {
            Ok(Some(exit)) => Some(exit),
            Ok(None) => {
                // Not exited after all: cannot happen once the exit was
                // seen. Leave the child to its drop, which kills and reaps.
                tracing::error!(handle = %self.id, "child not reapable at finish");
                None
            }
            Err(err) => {
                tracing::error!(handle = %self.id, %err, "reaping the child failed");
                None
            }
        };
        self.become_terminal(myself, state, exit);
    }

    /// Stops supervising at once (the actor is stopping: release, eviction
    /// or registry shutdown): kills the tree, waits briefly for the child to
    /// exit, reaps it, and answers everyone waiting.
    async fn stop_now(&self, myself: &ActorRef<ProcessMsg>, state: &mut ProcessState) {
        state.lifecycle.stopping();
        let mut exit = None;
        if !state.child.is_reaped() {
            self.signal(state, RawSignal::KILL);
            if !state.lifecycle.leader_exited() {
                match state.child.exited() {
                    Ok(exited) => {
                        if tokio::time::timeout(STOP_REAP_WAIT, exited).await.is_err() {
                            tracing::error!(handle = %self.id, "killed child did not exit in time");
                        }
                    }
                    Err(err) => tracing::error!(handle = %self.id, %err, "cannot watch the child"),
                }
            }
            if let Some(cleanup) = self.cleanup(&state.child)
                && let Ok(worker) = worker()
            {
                state.extras().tree_usage = worker.cleanup(cleanup).await.map(tree_usage);
            }
            exit = state.child.reap().ok().flatten();
        }
        self.become_terminal(myself, state, exit);
    }

    fn become_terminal(
        &self,
        myself: &ActorRef<ProcessMsg>,
        state: &mut ProcessState,
        reaped: Option<(ExitInfo, ResourceUsage)>,
    ) {
        let exit = reaped.map(|(exit, _)| exit);
        state.io.abort();
        if let Some(extras) = &mut state.extras {
            for task in extras.tasks.drain(..) {
                task.abort();
            }
            if let StdinLink::Open { ended, .. } = &extras.stdin {
                // The writer answers what is queued with `StdinClosed` and
                // ends once the sender below is dropped.
                ended.send_replace(true);
                extras.stdin = StdinLink::Ended;
            }
        }
        let status = state.lifecycle.final_status(exit.and_then(|e| e.code));
        let mut snapshot = self.snapshot(state);
        snapshot.status = status;
        snapshot.ended_at = Some(self.settings.clock.now());
        snapshot.exit_code = exit.and_then(|e| e.code);
        snapshot.signal = exit.and_then(|e| e.signal);
        // The cgroup, where there is one, counted every member of the tree.
        let tree_usage = state.extras.as_ref().and_then(|e| e.tree_usage);
        snapshot.usage = reaped.map(|(_, usage)| tree_usage.unwrap_or(usage));
        snapshot.paused = false;
        tracing::info!(
            handle = %self.id,
            %status,
            exit_code = ?snapshot.exit_code,
            signal = ?snapshot.signal,
            "process terminal"
        );
        // The snapshot now holds the kept output; the capture buffers go.
        state.output = Captures::new(1);
        // A kill sent without waiting for its answer observes nothing.
        let extras = state.extras.as_deref_mut();
        let observed = extras
            .as_ref()
            .is_some_and(|e| !e.waiters.is_empty() || e.killers.iter().any(|k| !k.is_closed()));
        state.lifecycle.end(snapshot.clone(), observed);
        if let Some(watch) = extras.as_ref().and_then(|e| e.watch.as_ref()) {
            watch.publish(snapshot.clone());
        }
        // Tell the registry first: a caller whose wait returns and who then
        // asks the registry must find the handle terminal there too.
        let _ = self
            .settings
            .registry
            .cast(RegistryMsg::Report(ProcessReport(Report::Finished {
                snapshot: Box::new(snapshot.clone()),
                observed,
                actor: myself.clone(),
            })));
        // Nobody waits, kills, watches or subscribes.
        let Some(extras) = extras else {
            return;
        };
        // Subscribers next: each has every chunk and its exit event in its
        // channel or mailbox before any waiter or killer is answered, so a
        // caller acting on a wait finds its sink complete.
        extras.subscribers.exit(&snapshot);
        for waiter in extras.waiters.drain(..) {
            if let Some(timer) = waiter.timer {
                timer.abort();
            }
            let _ = waiter.port.send(Ok(WaitOutcome {
                snapshot: snapshot.clone(),
                timed_out: false,
            }));
        }
        for killer in extras.killers.drain(..) {
            let _ = killer.send(Ok(snapshot.clone()));
        }
    }
}

/// The usage a tree's cgroup counted, as a snapshot reports it.
fn tree_usage(tree: TreeUsage) -> ResourceUsage {
    ResourceUsage {
        user_time: tree.user,
        system_time: tree.system,
        max_rss_kib: tree.memory_peak.map(|bytes| bytes / 1024),
        peak_processes: tree.pids_peak,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The actor and its state live in the actor's task cell for as long
    /// as the process runs, and tokio rounds that cell up to 128 bytes:
    /// the two together must stay small enough to keep it at 896 bytes
    /// (1,152 when the state carried every rarely used part inline).
    #[test]
    fn the_actor_and_its_state_stay_small() {
        let size = std::mem::size_of::<ProcessActor>() + std::mem::size_of::<ProcessState>();
        assert!(
            size <= 216,
            "ProcessActor and ProcessState are {size} bytes"
        );
    }
}
