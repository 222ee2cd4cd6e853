//! The pieces of the job runner: a [`Supervisor`] that links the registry,
//! a [`LogSink`] that collects each job's output by its tag, and a
//! [`JobRunner`] that spawns jobs with a timeout, subscribes the sink at
//! spawn, waits for them and cancels them by owner.
//!
//! `examples/job_runner.rs` runs them; `tests/job_runner.rs` runs 200
//! jobs through them.

use std::collections::HashMap;
use std::time::Duration;

use procward::{
    HandleId, KillRequest, OutputEvent, OutputStream, Registry, RegistryActor, RegistryConfig,
    RegistryMsg, Snapshot, SpawnRequest, Status, SubscribeRequest, Subscriber,
};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use serde::{Deserialize, Serialize};

/// A job's number: the tag of its subscription, so the sink needs no table
/// of handle ids.
pub(crate) type JobId = u64;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct JobSpec {
    /// The shell command.
    pub(crate) command: String,
    /// Who the job belongs to; `CancelOwner` kills all of an owner's jobs.
    pub(crate) owner: String,
    /// The job is killed (`timed_out`) when it runs longer.
    pub(crate) timeout: Duration,
}

/// A finished job, as the runner reports it: plain data that can be
/// logged, stored or sent elsewhere, errors included (`procward::Error` is
/// `Clone` and serializable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JobReport {
    /// The job.
    pub(crate) job: JobId,
    /// Its pid (its process group, which procward killed at the end).
    pub(crate) pid: u32,
    /// How it ended.
    pub(crate) status: Status,
    /// Its exit code, if it exited.
    pub(crate) exit_code: Option<i32>,
    /// How long it ran.
    pub(crate) elapsed: Option<Duration>,
    /// Every byte of stdout, in order, as the sink received it.
    pub(crate) stdout: Vec<u8>,
    /// Every byte of stderr.
    pub(crate) stderr: Vec<u8>,
    /// Bytes the sink was told it missed (it fell behind its window).
    pub(crate) missed: u64,
    /// The byte totals the registry counted, to check the sink against.
    pub(crate) total_stdout: u64,
    /// The same for stderr.
    pub(crate) total_stderr: u64,
}

/// Why a job has no report. Plain data too: it embeds `procward::Error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub(crate) enum JobError {
    /// procward refused or failed (a spawn error, a full registry, ...).
    #[error(transparent)]
    Procward(#[from] procward::Error),
    /// No job with this id has started.
    #[error("no started job {0}")]
    UnknownJob(JobId),
    /// The log sink stopped.
    #[error("the log sink has stopped")]
    SinkGone,
}

/// The outcome of waiting for one job.
pub(crate) type JobOutcome = Result<JobReport, JobError>;

// ---------------------------------------------------------------- sink --

/// Collects the output of every job, by tag.
pub(crate) struct LogSink;

/// The sink's messages.
// Like `OutputEvent` itself: ractor boxes every message, so boxing the
// event too would only add an allocation per chunk.
#[allow(clippy::large_enum_variant)]
pub(crate) enum SinkMsg {
    /// An output event of a job.
    Output(OutputEvent),
    /// Hands over (and forgets) a job's log once its exit event is in.
    Take(JobId, RpcReplyPort<Option<JobLog>>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for SinkMsg {}

// What `get_derived` needs: into the sink's message, and back out of it
// (ractor converts a message back when a send fails, and panics if this
// conversion does not give the event back).
impl From<OutputEvent> for SinkMsg {
    fn from(event: OutputEvent) -> Self {
        SinkMsg::Output(event)
    }
}

impl TryFrom<SinkMsg> for OutputEvent {
    type Error = SinkMsg;

    fn try_from(msg: SinkMsg) -> Result<Self, SinkMsg> {
        match msg {
            SinkMsg::Output(event) => Ok(event),
            other => Err(other),
        }
    }
}

/// One job's output as the sink received it.
#[derive(Debug, Default)]
pub(crate) struct JobLog {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    missed: u64,
    exit: Option<Snapshot>,
}

impl Actor for LogSink {
    type Msg = SinkMsg;
    type State = HashMap<JobId, JobLog>;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<SinkMsg>,
        _args: (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(HashMap::new())
    }

    async fn handle(
        &self,
        _myself: ActorRef<SinkMsg>,
        message: SinkMsg,
        logs: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SinkMsg::Output(event) => {
                let log = logs.entry(event.tag()).or_default();
                match event {
                    // The event (and its window credit) is dropped at the
                    // end of this arm: the sink never holds the window.
                    OutputEvent::Chunk { stream, bytes, .. } => match stream {
                        OutputStream::Stdout => log.stdout.extend_from_slice(&bytes),
                        OutputStream::Stderr => log.stderr.extend_from_slice(&bytes),
                    },
                    OutputEvent::Missed { bytes, .. } => log.missed += bytes,
                    OutputEvent::Exit { snapshot, .. } => log.exit = Some(snapshot),
                }
            }
            SinkMsg::Take(job, reply) => {
                let done = logs.get(&job).is_some_and(|log| log.exit.is_some());
                let _ = reply.send(if done { logs.remove(&job) } else { None });
            }
        }
        Ok(())
    }
}

// -------------------------------------------------------------- runner --

/// Spawns jobs, waits for them, cancels them by owner.
pub(crate) struct JobRunner;

/// The runner's messages.
pub(crate) enum RunnerMsg {
    /// Starts a job; answers its id once it has started (with the
    /// library's default cap policy, a job past the cap waits for a place
    /// rather than killing a running one).
    Submit(JobSpec, RpcReplyPort<Result<JobId, JobError>>),
    /// Answers when the job has ended, with everything it wrote.
    Wait(JobId, RpcReplyPort<JobOutcome>),
    /// Kills every job of an owner, queued ones included; answers how many
    /// running jobs were killed.
    CancelOwner(String, RpcReplyPort<Result<usize, JobError>>),
    /// A job started (from the runner's own spawn task).
    Started(JobId, HandleId),
}

#[cfg(feature = "cluster")]
impl ractor::Message for RunnerMsg {}

/// What the runner is handed.
pub(crate) struct RunnerArgs {
    /// The registry (linked under the supervisor).
    pub(crate) registry: Registry,
    /// Where job output goes.
    pub(crate) sink: ActorRef<SinkMsg>,
}

/// The runner's state.
pub(crate) struct RunnerState {
    registry: Registry,
    sink: ActorRef<SinkMsg>,
    next_job: JobId,
    handles: HashMap<JobId, HandleId>,
}

impl Actor for JobRunner {
    type Msg = RunnerMsg;
    type State = RunnerState;
    type Arguments = RunnerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<RunnerMsg>,
        args: RunnerArgs,
    ) -> Result<RunnerState, ActorProcessingErr> {
        Ok(RunnerState {
            registry: args.registry,
            sink: args.sink,
            next_job: 1,
            handles: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RunnerMsg>,
        message: RunnerMsg,
        state: &mut RunnerState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RunnerMsg::Submit(spec, reply) => {
                let job = state.next_job;
                state.next_job += 1;
                // The sink is subscribed as part of the spawn: it gets
                // every byte from the first, and the job's id as its tag.
                let request = SpawnRequest::shell(spec.command)
                    .owner(spec.owner)
                    .timeout(spec.timeout)
                    .subscribe(
                        SubscribeRequest::new(Subscriber::Actor(state.sink.get_derived())).tag(job),
                    );
                // The spawn may wait in the registry's queue: never in this
                // handler, or the runner would stop answering meanwhile.
                let registry = state.registry.clone();
                tokio::spawn(async move {
                    let started = registry.spawn(request).await;
                    if let Ok(snapshot) = &started {
                        let _ = myself.cast(RunnerMsg::Started(job, snapshot.handle_id));
                    }
                    let _ = reply.send(started.map(|_| job).map_err(JobError::from));
                });
            }
            RunnerMsg::Started(job, handle) => {
                state.handles.insert(job, handle);
            }
            RunnerMsg::Wait(job, reply) => {
                let Some(handle) = state.handles.get(&job).copied() else {
                    let _ = reply.send(Err(JobError::UnknownJob(job)));
                    return Ok(());
                };
                let registry = state.registry.clone();
                let sink = state.sink.clone();
                tokio::spawn(async move {
                    let _ = reply.send(wait_for(registry, sink, job, handle).await);
                });
            }
            RunnerMsg::CancelOwner(owner, reply) => {
                let registry = state.registry.clone();
                tokio::spawn(async move {
                    let killed = registry.kill_owner(owner, KillRequest::default()).await;
                    let _ = reply.send(killed.map(|snaps| snaps.len()).map_err(JobError::from));
                });
            }
        }
        Ok(())
    }
}

/// Waits for the job's end, then takes its log from the sink. procward
/// queues a subscriber's every chunk and its exit event before it answers
/// a waiter, so the sink's `Take`, sent after the wait returned, finds the
/// log complete.
async fn wait_for(
    registry: Registry,
    sink: ActorRef<SinkMsg>,
    job: JobId,
    handle: HandleId,
) -> JobOutcome {
    let end = registry.wait(handle, None).await?.snapshot;
    let log = ractor::call!(sink, SinkMsg::Take, job)
        .map_err(|_| JobError::SinkGone)?
        .unwrap_or_default();
    Ok(JobReport {
        job,
        pid: end.pid,
        status: end.status,
        exit_code: end.exit_code,
        elapsed: end.elapsed(),
        stdout: log.stdout,
        stderr: log.stderr,
        missed: log.missed,
        total_stdout: end.stdout.total_bytes,
        total_stderr: end.stderr.total_bytes,
    })
}

// ---------------------------------------------------------- supervisor --

/// Links the registry, the sink and the runner, and stops them in order.
pub(crate) struct Supervisor;

/// The supervisor's one request: the runner to talk to.
pub(crate) enum SupervisorMsg {
    /// Answers the runner.
    Runner(RpcReplyPort<ActorRef<RunnerMsg>>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for SupervisorMsg {}

/// The supervisor's children.
pub(crate) struct Children {
    registry: ActorRef<RegistryMsg>,
    runner: ActorRef<RunnerMsg>,
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = Children;
    type Arguments = RegistryConfig;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        config: RegistryConfig,
    ) -> Result<Children, ActorProcessingErr> {
        let (registry, _) =
            Actor::spawn_linked(None, RegistryActor, config, myself.get_cell()).await?;
        let (sink, _) = Actor::spawn_linked(None, LogSink, (), myself.get_cell()).await?;
        let args = RunnerArgs {
            registry: Registry::from_actor(registry.clone()),
            sink,
        };
        let (runner, _) = Actor::spawn_linked(None, JobRunner, args, myself.get_cell()).await?;
        Ok(Children { registry, runner })
    }

    async fn handle(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        children: &mut Children,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Runner(reply) => {
                let _ = reply.send(children.runner.clone());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        _children: &mut Children,
    ) -> Result<(), ActorProcessingErr> {
        // A child that fails takes the system down (its post_stop then
        // stops the registry in order); a child stopped in post_stop is
        // the normal end.
        if let SupervisionEvent::ActorFailed(cell, err) = event {
            tracing::error!(actor = ?cell.get_id(), %err, "a job system actor failed");
            myself.stop(Some("a child failed".to_owned()));
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        children: &mut Children,
    ) -> Result<(), ActorProcessingErr> {
        // Stop the runner first (no new jobs), then the registry in order:
        // every job killed and reaped, pending waits answered. Left to
        // ractor, the registry would be killed without its own stop.
        let _ = children.runner.stop_and_wait(None, None).await;
        let _ = children.registry.stop_and_wait(None, None).await;
        Ok(())
    }
}

/// Starts the job system; returns the supervisor (stop it to shut down)
/// and the runner.
pub(crate) async fn start(
    config: RegistryConfig,
) -> Result<(ActorRef<SupervisorMsg>, ActorRef<RunnerMsg>), Box<dyn std::error::Error>> {
    let (supervisor, _) = Actor::spawn(None, Supervisor, config).await?;
    let runner = ractor::call!(supervisor, SupervisorMsg::Runner)?;
    Ok((supervisor, runner))
}
