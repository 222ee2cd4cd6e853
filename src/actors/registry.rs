//! The registry actor: owns the handle table and the eviction policy, and
//! starts one linked [process actor](super::process) per spawn.
//!
//! Requests about a running handle are forwarded to its process actor with
//! the caller's reply port; the registry itself never waits on a process.
//! When a process actor reports its handle terminal, the registry keeps the
//! terminal snapshot, answers for the handle from then on, and drains the
//! actor (it answers what is already queued for it, then stops).

use std::sync::Arc;
use std::time::Duration;

use ractor::{
    Actor, ActorId, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort, SupervisionEvent,
};
use time::OffsetDateTime;

use super::child;
use super::handle_table::{EntryState, HandleTable, RunningActor, running_summary};
use super::process::{ProcessActor, ProcessArgs};
use super::subscribers::exit_only;
use crate::config::RegistryConfig;
use crate::error::{Error, Result};
use crate::messages::{
    HandleId, KillRequest, ProcessFinished, ProcessMsg, RegistryMsg, Snapshot, SpawnRequest,
    Status, StreamOutput, WaitOutcome,
};

/// How long stopping the registry waits for its process actors to kill and
/// reap their children.
const STOP_CHILDREN_WAIT: Duration = Duration::from_secs(10);

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

/// The registry's state: its settings and its handle table. Owned by the
/// actor; nothing outside it can reach it.
#[derive(Debug)]
pub struct RegistryState {
    config: RegistryConfig,
    table: HandleTable<ActorRef<ProcessMsg>>,
}

impl RunningActor for ActorRef<ProcessMsg> {
    type Key = ActorId;

    fn key(&self) -> ActorId {
        self.get_id()
    }
}

impl Actor for RegistryActor {
    type Msg = RegistryMsg;
    type State = RegistryState;
    type Arguments = RegistryConfig;

    async fn pre_start(
        &self,
        _myself: ActorRef<RegistryMsg>,
        config: RegistryConfig,
    ) -> Result<RegistryState, ActorProcessingErr> {
        config.validate()?;
        if config.reap_orphans {
            super::orphans::become_subreaper()?;
        }
        Ok(RegistryState {
            config,
            table: HandleTable::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RegistryMsg>,
        message: RegistryMsg,
        state: &mut RegistryState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RegistryMsg::Spawn(request, reply) => {
                let result = state.spawn(&myself, request).await;
                let _ = reply.send(result);
            }
            RegistryMsg::Poll(id, reply) => match state.table.get(&id).map(|e| &e.state) {
                None => send(reply, Err(Error::UnknownHandle(id))),
                Some(EntryState::Finished(snapshot)) => send(reply, Ok((**snapshot).clone())),
                Some(EntryState::Running(actor)) => forward(actor, ProcessMsg::Poll(reply)),
            },
            RegistryMsg::Wait(id, timeout, reply) => match state.table.get(&id).map(|e| &e.state) {
                None => send(reply, Err(Error::UnknownHandle(id))),
                Some(EntryState::Finished(snapshot)) => send(
                    reply,
                    Ok(WaitOutcome {
                        snapshot: (**snapshot).clone(),
                        timed_out: false,
                    }),
                ),
                Some(EntryState::Running(actor)) => {
                    forward(actor, ProcessMsg::Wait(timeout, reply))
                }
            },
            RegistryMsg::Kill(id, request, reply) => state.kill(id, request, reply),
            RegistryMsg::Read(id, request, reply) => match state.table.get(&id).map(|e| &e.state) {
                None => send(reply, Err(Error::UnknownHandle(id))),
                Some(EntryState::Finished(snapshot)) => send(reply, snapshot.read(&request)),
                Some(EntryState::Running(actor)) => {
                    forward(actor, ProcessMsg::Read(request, reply))
                }
            },
            RegistryMsg::Write(id, bytes, reply) => match state.table.get(&id).map(|e| &e.state) {
                None => send(reply, Err(Error::UnknownHandle(id))),
                Some(EntryState::Finished(_)) => send(reply, Err(Error::StdinClosed(id))),
                Some(EntryState::Running(actor)) => forward(actor, ProcessMsg::Write(bytes, reply)),
            },
            RegistryMsg::CloseStdin(id, reply) => match state.table.get(&id).map(|e| &e.state) {
                None => send(reply, Err(Error::UnknownHandle(id))),
                Some(EntryState::Finished(_)) => send(reply, Ok(())),
                Some(EntryState::Running(actor)) => forward(actor, ProcessMsg::CloseStdin(reply)),
            },
            RegistryMsg::Subscribe(id, subscriber, reply) => {
                match state.table.get(&id).map(|e| &e.state) {
                    None => send(reply, Err(Error::UnknownHandle(id))),
                    Some(EntryState::Finished(snapshot)) => {
                        send(reply, Ok(exit_only(&subscriber, (**snapshot).clone())))
                    }
                    Some(EntryState::Running(actor)) => {
                        forward(actor, ProcessMsg::Subscribe(subscriber, reply))
                    }
                }
            }
            RegistryMsg::Release(id, reply) => state.release(id, reply),
            RegistryMsg::List(reply) => {
                let _ = reply.send(state.table.summaries());
            }
            RegistryMsg::Finished(ProcessFinished { snapshot }) => {
                if let Some(actor) = state.table.finish(snapshot) {
                    // Answer what is queued for it, then stop.
                    let _ = actor.drain();
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<RegistryMsg>,
        event: SupervisionEvent,
        state: &mut RegistryState,
    ) -> Result<(), ActorProcessingErr> {
        // Never stop because a child did (ractor's default would).
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".to_owned()))
            }
            _ => return Ok(()),
        };
        // A process actor that ends after reporting its handle terminal is
        // the normal case and is no longer in the running set.
        if let Some(id) = state.table.running_handle(&cell.get_id()) {
            tracing::error!(handle = %id, %reason, "process actor ended without finishing; its tree was killed");
            state.fail(
                id,
                format!("the process actor ended unexpectedly: {reason}"),
            );
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
        // Drain, not stop: requests already forwarded are answered first.
        myself
            .drain_children_and_wait(Some(STOP_CHILDREN_WAIT))
            .await;
        Ok(())
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
    match message {
        ProcessMsg::Poll(reply) => send(reply, Err(Error::NoReply { operation: "poll" })),
        ProcessMsg::Wait(_, reply) => send(reply, Err(Error::NoReply { operation: "wait" })),
        ProcessMsg::Kill(_, reply) => send(reply, Err(Error::NoReply { operation: "kill" })),
        ProcessMsg::Read(_, reply) => send(reply, Err(Error::NoReply { operation: "read" })),
        ProcessMsg::Write(_, reply) => send(reply, Err(Error::NoReply { operation: "write" })),
        ProcessMsg::CloseStdin(reply) => send(
            reply,
            Err(Error::NoReply {
                operation: "close_stdin",
            }),
        ),
        ProcessMsg::Subscribe(_, reply) => send(
            reply,
            Err(Error::NoReply {
                operation: "subscribe",
            }),
        ),
        ProcessMsg::Event(_) => {}
    }
}

impl RegistryState {
    async fn spawn(
        &mut self,
        myself: &ActorRef<RegistryMsg>,
        request: SpawnRequest,
    ) -> Result<Snapshot> {
        request.validate()?;
        let spawned = child::spawn(&request)?;
        let pid = spawned.child.pid();
        let handle_id = HandleId::next(pid);
        let command: Arc<str> = request.display().into();
        let started_at = OffsetDateTime::now_utc();
        let args = ProcessArgs {
            handle_id,
            spawned,
            command: command.clone(),
            started_at,
            timeout: request.timeout,
            drain_grace: self.config.drain_grace,
            kill_grace: self.config.kill_grace,
            output_cap: request.output_cap.unwrap_or(self.config.output_cap),
            reap_orphans: self.config.reap_orphans,
            stdin: request.stdin,
            registry: myself.clone(),
        };
        // If the actor fails to start, `args` (and the child in it) is
        // dropped, which kills and reaps the child.
        let (actor, _) = Actor::spawn_linked(None, ProcessActor, args, myself.get_cell())
            .await
            .map_err(|err| Error::ActorStart {
                actor: "process",
                reason: err.to_string(),
            })?;
        // Make room only now: a spawn that fails must not cost another
        // handle its place.
        while self.table.len() >= self.config.max_handles {
            self.evict_one();
        }
        let snapshot = Snapshot {
            handle_id,
            pid,
            command,
            status: Status::Running,
            started_at,
            ended_at: None,
            exit_code: None,
            signal: None,
            stdout: StreamOutput::default(),
            stderr: StreamOutput::default(),
            failure: None,
        };
        self.table.insert_running(running_summary(&snapshot), actor);
        tracing::debug!(handle = %handle_id, pid, "spawned");
        Ok(snapshot)
    }

    /// Makes room for one handle: the oldest finished one goes first; when
    /// every handle is running, the oldest running one is killed.
    fn evict_one(&mut self) {
        let Some(id) = self.table.eviction_candidate() else {
            return;
        };
        let Some(entry) = self.table.remove(&id) else {
            return;
        };
        match entry.state {
            EntryState::Finished(_) => tracing::debug!(handle = %id, "evicted finished handle"),
            EntryState::Running(actor) => {
                tracing::warn!(
                    handle = %id,
                    max_handles = self.config.max_handles,
                    "registry full of running processes: killing and evicting the oldest"
                );
                // It answers what is queued for it first, then its post_stop
                // kills and reaps the tree and answers the waiters.
                let _ = actor.drain();
            }
        }
    }

    fn kill(&mut self, id: HandleId, request: KillRequest, reply: RpcReplyPort<Result<Snapshot>>) {
        if rustix::process::Signal::from_named_raw(request.signal).is_none() {
            return send(
                reply,
                Err(Error::invalid(format!(
                    "unknown signal number {}",
                    request.signal
                ))),
            );
        }
        match self.table.get(&id).map(|e| &e.state) {
            None => send(reply, Err(Error::UnknownHandle(id))),
            Some(EntryState::Finished(snapshot)) => send(reply, Ok((**snapshot).clone())),
            Some(EntryState::Running(actor)) => forward(actor, ProcessMsg::Kill(request, reply)),
        }
    }

    fn release(&mut self, id: HandleId, reply: RpcReplyPort<bool>) {
        match self.table.remove(&id).map(|e| e.state) {
            None => send(reply, false),
            Some(EntryState::Finished(_)) => send(reply, true),
            Some(EntryState::Running(actor)) => {
                tracing::debug!(handle = %id, "released while running; killing its tree");
                // Answer once the tree is killed and reaped, without making
                // the registry wait for it.
                // Requests sent before the release are answered first (drain
                // keeps their order); the tree dies in the actor's post_stop.
                tokio::spawn(async move {
                    let _ = actor.drain_and_wait(None).await;
                    send(reply, true);
                });
            }
        }
    }

    /// Marks a handle whose process actor died as terminal. The actor's
    /// child was killed and reaped when the actor's state was dropped.
    fn fail(&mut self, id: HandleId, failure: String) {
        let Some(entry) = self.table.get(&id) else {
            return;
        };
        let summary = &entry.summary;
        let snapshot = Snapshot {
            handle_id: id,
            pid: summary.pid,
            command: summary.command.clone(),
            status: Status::Killed,
            started_at: summary.started_at,
            ended_at: Some(OffsetDateTime::now_utc()),
            exit_code: None,
            signal: None,
            stdout: StreamOutput::default(),
            stderr: StreamOutput::default(),
            failure: Some(failure),
        };
        self.table.finish(snapshot);
    }
}
