//! The process actor: one per OS process. It owns the child, its captured
//! output and its lifecycle, and answers Poll / Wait / Kill with snapshots.
//!
//! The actor never awaits inside a message handler. Its own tasks (one
//! reader per pipe, one exit watcher, timers) report to it as
//! [`ProcessMsg::Event`]s, so a pending wait never delays a kill or a poll.
//!
//! Lifecycle: `Running` until the first of these is handled, which settles
//! the terminal status (first writer wins):
//! - a kill → `killed`; the spawn timeout → `timed_out`;
//! - the child's exit → `exited` (with the code, or the signal someone
//!   else sent).
//!
//! After the child exits, output is drained until both pipes close or the
//! drain grace passes; then the rest of the process group is killed, what
//! the pipes already hold is read, the OS worker sweeps the tree (in
//! orphan-reaping and escapee-hunting modes), the child is reaped, and the
//! handle turns terminal: waiters and killers get the terminal snapshot and
//! the registry is told. Every byte the tree wrote to its pipes before the
//! drain ended is in the terminal snapshot (or counted as dropped by the
//! cap).

use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rustix::process::Signal;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use super::capture::Capture;
use super::handle_table::Owner;
use super::output_reader::read_stream;
use super::stdin_writer::{StdinCommand, write_stdin};
use super::subscribers::{Subscribers, exit_only};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::messages::ResourceUsage;
use crate::messages::{
    Event, HandleId, KillRequest, OutputStream, PUBLISH_INTERVAL, ProcessEvent, ProcessMsg,
    ProcessReport, ReadChunk, ReadRequest, RegistryMsg, Report, SIGKILL, Snapshot, SnapshotWatch,
    Status, Stdin, Subscribed, Subscriber, WaitOutcome,
};
use crate::os::cgroup::TreeUsage;
use crate::os::child::{ChildProcess, ExitInfo, Spawned};
use crate::os::worker::{Cleanup, worker};

/// How long the actor's stop waits for a killed child to exit before it
/// leaves the reaping to [`ChildProcess`]'s drop.
const STOP_REAP_WAIT: Duration = Duration::from_secs(5);

/// The actor owning one OS process. Only the registry starts it.
pub(crate) struct ProcessActor;

/// What the registry hands a new process actor.
pub(crate) struct ProcessArgs {
    pub(crate) handle_id: HandleId,
    pub(crate) spawned: Spawned,
    pub(crate) command: Arc<str>,
    pub(crate) owner: Owner,
    pub(crate) started_at: OffsetDateTime,
    pub(crate) timeout: Option<Duration>,
    pub(crate) drain_grace: Duration,
    pub(crate) kill_grace: Duration,
    pub(crate) output_cap: usize,
    pub(crate) reap_orphans: bool,
    pub(crate) escapee_token: Option<String>,
    pub(crate) stdin: Stdin,
    pub(crate) clock: Clock,
    pub(crate) registry: ActorRef<RegistryMsg>,
}

struct Waiter {
    id: u64,
    port: RpcReplyPort<Result<WaitOutcome>>,
    timer: Option<JoinHandle<()>>,
}

/// Everything that changes about one process; owned by its actor alone.
pub(crate) struct ProcessState {
    id: HandleId,
    command: Arc<str>,
    owner: Owner,
    started_at: OffsetDateTime,
    child: ChildProcess,
    stdout: Capture,
    stderr: Capture,
    open_streams: u8,
    stdin: StdinLink,
    /// Turned true when the drain is over: the readers read what the pipes
    /// hold, then close.
    drain_now: watch::Sender<bool>,
    subscribers: Subscribers,
    leader_exited: bool,
    /// The terminal status to be, once a kill, the timeout or the exit has
    /// been handled. Never overwritten.
    settled: Option<Status>,
    terminal: Option<Snapshot>,
    waiters: Vec<Waiter>,
    next_waiter: u64,
    killers: Vec<RpcReplyPort<Result<Snapshot>>>,
    /// Readers, the exit watcher and timers: aborted when terminal.
    tasks: Vec<JoinHandle<()>>,
    escalation_armed: bool,
    /// The group was sent SIGSTOP by a pause and not continued since.
    paused: bool,
    /// The published snapshot, made on the first `Watch`: processes nobody
    /// watches publish nothing.
    watch: Option<SnapshotWatch>,
    /// A `Publish` event is on its way.
    publish_pending: bool,
    /// A signal the child can catch was sent (a kill with SIGTERM, ...).
    sent_catchable: bool,
    /// Waiting for the group sweep before reaping the child.
    sweeping: bool,
    /// What the tree's cgroup counted, read when it emptied.
    tree_usage: Option<TreeUsage>,
    reap_orphans: bool,
    /// In escapee-hunting mode, the token in the tree's environment.
    escapee_token: Option<String>,
    drain_grace: Duration,
    kill_grace: Duration,
    clock: Clock,
    /// A caller has been given the terminal snapshot.
    observed: bool,
    /// The registry evicted this handle while it ran: answers are receipts.
    evicted: bool,
    registry: ActorRef<RegistryMsg>,
    myself: ActorRef<ProcessMsg>,
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
        let exited = child.exited()?;
        let mut tasks = Vec::with_capacity(4);
        let watcher = myself.clone();
        tasks.push(tokio::spawn(async move {
            let event = match exited.await {
                Ok(()) => Event::LeaderExited,
                Err(err) => Event::WatchFailed(err),
            };
            let _ = watcher.cast(event.into());
        }));
        let (drain_now, drain_rx) = watch::channel(false);
        tasks.push(tokio::spawn(read_stream(
            stdout,
            OutputStream::Stdout,
            myself.clone(),
            drain_rx.clone(),
        )));
        tasks.push(tokio::spawn(read_stream(
            stderr,
            OutputStream::Stderr,
            myself.clone(),
            drain_rx,
        )));
        if let Some(timeout) = args.timeout {
            tasks.push(timer(&myself, timeout, Event::TimeoutExpired));
        }
        let stdin = stdin_pipe.map_or(StdinLink::NotPiped, |pipe| {
            let initial = match args.stdin {
                Stdin::Bytes(bytes) => Some(bytes),
                Stdin::Null | Stdin::Pipe => None,
            };
            let (commands, rx) = mpsc::unbounded_channel();
            let (ended, ended_rx) = watch::channel(false);
            // Not in `tasks`: it must answer every queued command, so it is
            // told of the end instead of aborted, and ends by itself.
            tokio::spawn(write_stdin(args.handle_id, pipe, initial, rx, ended_rx));
            StdinLink::Open { commands, ended }
        });
        tracing::debug!(handle = %args.handle_id, pid = child.pid(), command = %args.command, "process started");
        Ok(ProcessState {
            id: args.handle_id,
            command: args.command,
            owner: args.owner,
            started_at: args.started_at,
            child,
            stdout: Capture::new(args.output_cap),
            stderr: Capture::new(args.output_cap),
            open_streams: 2,
            stdin,
            drain_now,
            subscribers: Subscribers::default(),
            leader_exited: false,
            settled: None,
            terminal: None,
            waiters: Vec::new(),
            next_waiter: 0,
            killers: Vec::new(),
            tasks,
            escalation_armed: false,
            paused: false,
            watch: None,
            publish_pending: false,
            sent_catchable: false,
            sweeping: false,
            tree_usage: None,
            reap_orphans: args.reap_orphans,
            escapee_token: args.escapee_token,
            drain_grace: args.drain_grace,
            kill_grace: args.kill_grace,
            clock: args.clock,
            observed: false,
            evicted: false,
            registry: args.registry,
            myself,
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
                let snapshot = state.snapshot();
                if snapshot.status.is_terminal() {
                    state.note_observed();
                }
                let _ = reply.send(Ok(snapshot));
            }
            ProcessMsg::Evict => state.evict(&myself),
            ProcessMsg::Pause(reply) => {
                let _ = reply.send(Ok(state.pause(true)));
            }
            ProcessMsg::Resume(reply) => {
                let _ = reply.send(Ok(state.pause(false)));
            }
            ProcessMsg::Wait(timeout, reply) => state.wait(&myself, timeout, reply),
            ProcessMsg::Kill(request, reply) => state.kill(&myself, request, reply),
            ProcessMsg::Read(request, reply) => {
                let _ = reply.send(state.read(&request));
            }
            ProcessMsg::Write(bytes, reply) => {
                state.stdin_command(StdinCommand::Write(bytes, reply))
            }
            ProcessMsg::CloseStdin(reply) => state.stdin_command(StdinCommand::Close(reply)),
            ProcessMsg::Subscribe(subscriber, reply) => {
                let _ = reply.send(Ok(state.subscribe(subscriber)));
            }
            ProcessMsg::Watch(reply) => {
                let _ = reply.send(Ok(state.watch()));
            }
            ProcessMsg::Event(ProcessEvent(event)) => state.on_event(&myself, event)?,
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ProcessMsg>,
        state: &mut ProcessState,
    ) -> Result<(), ActorProcessingErr> {
        if state.terminal.is_none() {
            state.stop_now().await;
        }
        Ok(())
    }
}

/// The process actor's side of a piped stdin.
enum StdinLink {
    /// stdin is `/dev/null`.
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

impl ProcessState {
    fn snapshot(&mut self) -> Snapshot {
        if let Some(terminal) = &self.terminal {
            return terminal.clone();
        }
        let snapshot = Snapshot {
            handle_id: self.id,
            pid: self.child.pid(),
            command: self.command.clone(),
            status: Status::Running,
            started_at: self.started_at,
            ended_at: None,
            exit_code: None,
            signal: None,
            stdout: self.stdout.view(),
            stderr: self.stderr.view(),
            failure: None,
            owner: self.owner.clone(),
            evicted: false,
            paused: self.paused,
            containment: self.child.containment(),
            usage: None,
        };
        if self.evicted {
            snapshot.into_receipt()
        } else {
            snapshot
        }
    }

    /// Records that a caller was given the terminal snapshot, telling the
    /// registry if it already has the handle as terminal.
    fn note_observed(&mut self) {
        if self.observed {
            return;
        }
        self.observed = true;
        if self.terminal.is_some() {
            let _ = self
                .registry
                .cast(RegistryMsg::Report(ProcessReport(Report::Observed(
                    self.id,
                ))));
        }
    }

    /// Freezes or thaws the tree's cgroup (cgroup containment: escapees
    /// included), or stops (`SIGSTOP`) or continues (`SIGCONT`) the whole
    /// group. The status stays `running`; snapshots say `paused`. A no-op
    /// on a terminal handle, or once the child has exited.
    fn pause(&mut self, pause: bool) -> Snapshot {
        if self.terminal.is_none() && !self.leader_exited && self.paused != pause {
            self.stop_tree(pause);
            tracing::debug!(handle = %self.id, paused = pause, "process tree paused or resumed");
            self.publish();
        }
        self.snapshot()
    }

    /// The handle's watch, made now if nobody asked before.
    fn watch(&mut self) -> SnapshotWatch {
        if let Some(watch) = &self.watch {
            return watch.clone();
        }
        let watch = SnapshotWatch::new(self.snapshot());
        self.watch = Some(watch.clone());
        watch
    }

    /// Publishes the current snapshot to the watch, if there is one.
    fn publish(&mut self) {
        if self.watch.is_some() {
            let snapshot = self.snapshot();
            if let Some(watch) = &self.watch {
                watch.publish(snapshot);
            }
        }
    }

    /// The registry evicted this running handle: kill the tree and answer
    /// with receipts from now on.
    fn evict(&mut self, myself: &ActorRef<ProcessMsg>) {
        if self.terminal.is_some() {
            return;
        }
        self.evicted = true;
        if self.start_ending(myself, Status::Killed) {
            self.signal(Signal::KILL);
        }
    }

    /// Starts ending the process for a kill, the timeout or an eviction:
    /// handles an exit that came first (with its event still queued: the
    /// exit then settles the status), settles `status`, and ends the drain
    /// at once if only the drain was left. Returns whether the child still
    /// runs and must be signalled.
    fn start_ending(&mut self, myself: &ActorRef<ProcessMsg>, status: Status) -> bool {
        self.notice_exit(myself);
        if self.terminal.is_some() {
            return false;
        }
        self.settle(status);
        if self.leader_exited {
            self.finish(myself);
            return false;
        }
        true
    }

    fn capture_mut(&mut self, stream: OutputStream) -> &mut Capture {
        match stream {
            OutputStream::Stdout => &mut self.stdout,
            OutputStream::Stderr => &mut self.stderr,
        }
    }

    fn read(&self, request: &ReadRequest) -> Result<ReadChunk> {
        if let Some(terminal) = &self.terminal {
            return terminal.read(request);
        }
        let capture = match request.stream {
            OutputStream::Stdout => &self.stdout,
            OutputStream::Stderr => &self.stderr,
        };
        capture.read(request, false).ok_or(Error::OffsetOutOfRange {
            handle: self.id,
            stream: request.stream.as_str(),
            offset: request.offset,
            total: capture.total(),
        })
    }

    /// Hands a write or close to the stdin writer, which answers it.
    fn stdin_command(&self, command: StdinCommand) {
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
        match &self.stdin {
            StdinLink::NotPiped => refuse(command, Error::StdinNotPiped(self.id)),
            StdinLink::Ended => refuse(command, Error::StdinClosed(self.id)),
            StdinLink::Open { commands, .. } => {
                if let Err(mpsc::error::SendError(command)) = commands.send(command) {
                    refuse(command, Error::StdinClosed(self.id));
                }
            }
        }
    }

    fn subscribe(&mut self, subscriber: Subscriber) -> Subscribed {
        if let Some(terminal) = &self.terminal {
            return exit_only(&subscriber, terminal.clone());
        }
        self.subscribers.add(subscriber);
        Subscribed {
            stdout_offset: self.stdout.total(),
            stderr_offset: self.stderr.total(),
        }
    }

    fn wait(
        &mut self,
        myself: &ActorRef<ProcessMsg>,
        timeout: Option<Duration>,
        reply: RpcReplyPort<Result<WaitOutcome>>,
    ) {
        if let Some(terminal) = &self.terminal {
            let outcome = WaitOutcome {
                snapshot: terminal.clone(),
                timed_out: false,
            };
            // Tell the registry before the caller can act on the answer.
            self.note_observed();
            let _ = reply.send(Ok(outcome));
            return;
        }
        // Callers that gave up (their future was dropped) leave closed ports
        // behind; drop them here so waits on a long process stay bounded.
        self.waiters.retain(|w| {
            let open = !w.port.is_closed();
            if !open && let Some(timer) = &w.timer {
                timer.abort();
            }
            open
        });
        let id = self.next_waiter;
        self.next_waiter += 1;
        let timer = timeout.map(|t| timer(myself, t, Event::WaitExpired(id)));
        self.waiters.push(Waiter {
            id,
            port: reply,
            timer,
        });
    }

    fn kill(
        &mut self,
        myself: &ActorRef<ProcessMsg>,
        request: KillRequest,
        reply: RpcReplyPort<Result<Snapshot>>,
    ) {
        if let Some(terminal) = &self.terminal {
            let snapshot = terminal.clone();
            self.note_observed();
            let _ = reply.send(Ok(snapshot));
            return;
        }
        let Some(signal) = Signal::from_named_raw(request.signal) else {
            let _ = reply.send(Err(Error::invalid(format!(
                "unknown signal number {}",
                request.signal
            ))));
            return;
        };
        self.killers.retain(|port| !port.is_closed());
        self.killers.push(reply);
        if !self.start_ending(myself, Status::Killed) {
            return;
        }
        self.signal(signal);
        if request.signal != SIGKILL {
            self.sent_catchable = true;
            if self.paused {
                // A stopped process cannot act on a catchable signal.
                self.stop_tree(false);
            }
        }
        if request.signal != SIGKILL && !self.escalation_armed {
            self.escalation_armed = true;
            let grace = request.grace.unwrap_or(self.kill_grace);
            self.tasks.push(timer(myself, grace, Event::EscalateKill));
        }
    }

    fn on_event(
        &mut self,
        myself: &ActorRef<ProcessMsg>,
        event: Event,
    ) -> Result<(), ActorProcessingErr> {
        if self.terminal.is_some() {
            // Late output, timers and closes after the end change nothing.
            return Ok(());
        }
        match event {
            Event::Output { stream, chunk, .. } => {
                let capture = self.capture_mut(stream);
                let offset = capture.total();
                capture.push(chunk.clone());
                self.subscribers.chunk(self.id, stream, offset, &chunk);
                if self.watch.is_some() && !self.publish_pending {
                    // Publishing joins the kept output: at most once per
                    // interval, however fast the output comes.
                    self.publish_pending = true;
                    self.tasks
                        .push(timer(myself, PUBLISH_INTERVAL, Event::Publish));
                }
            }
            Event::Publish => {
                self.publish_pending = false;
                self.publish();
            }
            Event::StreamClosed(stream) => {
                tracing::trace!(handle = %self.id, stream = stream.as_str(), "stream closed");
                self.open_streams = self.open_streams.saturating_sub(1);
                if self.open_streams == 0 && self.leader_exited {
                    self.finish(myself);
                }
            }
            Event::LeaderExited => {
                if !self.leader_exited {
                    self.leader_exit(myself);
                }
            }
            Event::WatchFailed(err) => {
                return Err(format!("watching process {} failed: {err}", self.id).into());
            }
            Event::DrainExpired => {
                tracing::debug!(handle = %self.id, "drain grace passed; killing what is left of the group");
                self.finish(myself);
            }
            Event::TimeoutExpired => {
                if self.start_ending(myself, Status::TimedOut) {
                    tracing::info!(handle = %self.id, "spawn timeout passed; killing the process tree");
                    self.signal(Signal::KILL);
                }
            }
            Event::EscalateKill => {
                if self.leader_exited {
                    self.finish(myself);
                } else {
                    tracing::debug!(handle = %self.id, "kill grace passed; sending SIGKILL");
                    self.signal(Signal::KILL);
                }
            }
            Event::SweepDone(usage) => {
                self.tree_usage = usage;
                self.reap_and_end()
            }
            Event::WaitExpired(id) => {
                if let Some(pos) = self.waiters.iter().position(|w| w.id == id) {
                    let waiter = self.waiters.swap_remove(pos);
                    let _ = waiter.port.send(Ok(WaitOutcome {
                        snapshot: self.snapshot(),
                        timed_out: true,
                    }));
                }
            }
        }
        Ok(())
    }

    /// Handles the child's exit as soon as it is seen: settles `exited`
    /// unless a kill or the timeout came first, then ends the handle or
    /// starts the drain.
    fn leader_exit(&mut self, myself: &ActorRef<ProcessMsg>) {
        self.leader_exited = true;
        tracing::debug!(handle = %self.id, "process exited");
        self.settle(Status::Exited);
        if self.open_streams == 0 {
            self.finish(myself);
        } else {
            let grace = self.drain_grace;
            self.tasks.push(timer(myself, grace, Event::DrainExpired));
        }
    }

    /// Checks, without waiting, whether the child exited before its exit
    /// event arrived, and handles the exit now if so.
    fn notice_exit(&mut self, myself: &ActorRef<ProcessMsg>) {
        if self.leader_exited {
            return;
        }
        match self.child.peek_exit() {
            Ok(Some(_)) => self.leader_exit(myself),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(handle = %self.id, %err, "checking for the child's exit failed")
            }
        }
    }

    /// Records the terminal status to be, unless one is already settled.
    fn settle(&mut self, status: Status) {
        if self.settled.is_none() {
            tracing::debug!(handle = %self.id, %status, "terminal status settled");
            self.settled = Some(status);
        }
    }

    /// Freezes or thaws the tree (its cgroup, or its group by signals).
    fn stop_tree(&mut self, stop: bool) {
        if !self.child.freeze(stop) {
            self.signal(if stop { Signal::STOP } else { Signal::CONT });
        }
        self.paused = stop;
    }

    fn signal(&self, signal: Signal) {
        if let Err(err) = self.child.signal_group(signal) {
            tracing::warn!(handle = %self.id, ?signal, %err, "signalling the process group failed");
        }
    }

    /// Ends the handle after the child has exited: kills what is left of
    /// its group while the child is still unreaped (so the group id is still
    /// ours), has the readers read what the pipes hold and close, has the OS
    /// worker sweep the tree (orphan-reaping and escapee-hunting modes),
    /// then reaps the child and answers everyone waiting. Called again as
    /// each of those steps completes.
    fn finish(&mut self, myself: &ActorRef<ProcessMsg>) {
        if self.sweeping {
            return;
        }
        self.signal(Signal::KILL);
        if self.open_streams > 0 {
            // The last `StreamClosed` calls this again.
            self.drain_now.send_replace(true);
            return;
        }
        if let Some(cleanup) = self.cleanup() {
            self.sweeping = true;
            let actor = myself.clone();
            self.tasks.push(tokio::spawn(async move {
                let usage = match worker() {
                    Ok(worker) => worker.cleanup(cleanup).await,
                    Err(_) => None,
                };
                let _ = actor.cast(Event::SweepDone(usage).into());
            }));
            return;
        }
        self.reap_and_end();
    }

    /// What the OS worker must do before the child is reaped, if anything:
    /// empty and remove the tree's cgroup (cgroup containment, which needs
    /// nothing else), or sweep the group's orphans (orphan-reaping mode)
    /// and kill the escapees (escapee mode).
    fn cleanup(&self) -> Option<Cleanup> {
        let cgroup = self.child.cgroup_path().map(ToOwned::to_owned);
        (cgroup.is_some() || self.reap_orphans || self.escapee_token.is_some()).then(|| Cleanup {
            leader: self.child.pid(),
            sweep_group: self.reap_orphans && cgroup.is_none(),
            token: self.escapee_token.clone(),
            cgroup,
        })
    }

    fn reap_and_end(&mut self) {
        let exit = match self.child.reap() {
            Ok(Some(exit)) => Some(exit),
            Ok(None) => {
                // Not exited after all: cannot happen once LeaderExited was
                // seen. Leave the child to its drop, which kills and reaps.
                tracing::error!(handle = %self.id, "child not reapable at finish");
                None
            }
            Err(err) => {
                tracing::error!(handle = %self.id, %err, "reaping the child failed");
                None
            }
        };
        self.become_terminal(exit);
    }

    /// Stops supervising at once (the actor is stopping: release, eviction
    /// or registry shutdown): kills the tree, waits briefly for the child to
    /// exit, reaps it, and answers everyone waiting.
    async fn stop_now(&mut self) {
        self.settle(Status::Killed);
        let mut exit = None;
        if !self.child.is_reaped() {
            self.signal(Signal::KILL);
            if !self.leader_exited {
                match self.child.exited() {
                    Ok(exited) => {
                        if tokio::time::timeout(STOP_REAP_WAIT, exited).await.is_err() {
                            tracing::error!(handle = %self.id, "killed child did not exit in time");
                        }
                    }
                    Err(err) => tracing::error!(handle = %self.id, %err, "cannot watch the child"),
                }
            }
            if let Some(cleanup) = self.cleanup()
                && let Ok(worker) = worker()
            {
                self.tree_usage = worker.cleanup(cleanup).await;
            }
            exit = self.child.reap().ok().flatten();
        }
        self.become_terminal(exit);
    }

    fn become_terminal(&mut self, reaped: Option<(ExitInfo, ResourceUsage)>) {
        let exit = reaped.map(|(exit, _)| exit);
        for task in self.tasks.drain(..) {
            task.abort();
        }
        if let StdinLink::Open { ended, .. } = &self.stdin {
            // The writer answers what is queued with `StdinClosed` and
            // ends once the sender below is dropped.
            ended.send_replace(true);
            self.stdin = StdinLink::Ended;
        }
        let mut status = self.settled.unwrap_or(Status::Exited);
        if matches!(status, Status::Killed | Status::TimedOut)
            && exit.is_some_and(|e| e.code.is_some())
            && !self.sent_catchable
        {
            // Only SIGKILL was sent, and it cannot be caught: a child that
            // still exited with a code had exited before it arrived.
            status = Status::Exited;
        }
        let mut snapshot = self.snapshot();
        snapshot.status = status;
        snapshot.ended_at = Some(self.clock.now());
        snapshot.exit_code = exit.and_then(|e| e.code);
        snapshot.signal = exit.and_then(|e| e.signal);
        snapshot.usage = reaped.map(|(_, usage)| match self.tree_usage {
            // The cgroup counted every member of the tree.
            Some(tree) => ResourceUsage {
                user_time: tree.user,
                system_time: tree.system,
                max_rss_kib: tree.memory_peak.map(|bytes| bytes / 1024),
                peak_processes: tree.pids_peak,
            },
            None => usage,
        });
        snapshot.paused = false;
        self.paused = false;
        tracing::info!(
            handle = %self.id,
            %status,
            exit_code = ?snapshot.exit_code,
            signal = ?snapshot.signal,
            "process terminal"
        );
        // The snapshot now holds the kept output; the capture buffers go.
        self.stdout = Capture::new(1);
        self.stderr = Capture::new(1);
        self.terminal = Some(snapshot.clone());
        if let Some(watch) = &self.watch {
            watch.publish(snapshot.clone());
        }
        // Tell the registry first: a caller whose wait returns and who then
        // asks the registry must find the handle terminal there too.
        self.observed = !self.waiters.is_empty() || !self.killers.is_empty();
        let _ = self
            .registry
            .cast(RegistryMsg::Report(ProcessReport(Report::Finished {
                snapshot: Box::new(snapshot.clone()),
                observed: self.observed,
                actor: self.myself.clone(),
            })));
        for waiter in self.waiters.drain(..) {
            if let Some(timer) = waiter.timer {
                timer.abort();
            }
            let _ = waiter.port.send(Ok(WaitOutcome {
                snapshot: snapshot.clone(),
                timed_out: false,
            }));
        }
        for killer in self.killers.drain(..) {
            let _ = killer.send(Ok(snapshot.clone()));
        }
        self.subscribers.exit(&snapshot);
    }
}
