//! [`Registry`]: a cheap, cloneable handle to a registry actor with plain
//! `async fn` methods, for callers who do not want to deal in messages.

use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef, RpcReplyPort};

use crate::actors::RegistryActor;
use crate::config::RegistryConfig;
use crate::error::{Error, Result};
use crate::messages::{
    HandleId, HandleSummary, KillRequest, RegistryMsg, Snapshot, SpawnRequest, WaitOutcome,
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
#[derive(Debug, Clone)]
pub struct Registry {
    actor: ActorRef<RegistryMsg>,
    _owner: Option<Arc<StopOnDrop>>,
}

/// Stops the registry when the last owning handle goes.
#[derive(Debug)]
struct StopOnDrop(ActorRef<RegistryMsg>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop(Some("last registry handle dropped".to_owned()));
    }
}

impl Registry {
    /// Starts a registry actor (unsupervised) and returns a handle that
    /// owns it. Must be called inside a tokio runtime.
    pub async fn start(config: RegistryConfig) -> Result<Self> {
        config.validate()?;
        let (actor, _) = Actor::spawn(None, RegistryActor, config)
            .await
            .map_err(|err| Error::ActorStart {
                actor: "registry",
                reason: err.to_string(),
            })?;
        Ok(Registry {
            _owner: Some(Arc::new(StopOnDrop(actor.clone()))),
            actor,
        })
    }

    /// Wraps a registry actor started elsewhere (for example linked under
    /// your own supervisor). Dropping the handle leaves the actor running.
    pub fn from_actor(actor: ActorRef<RegistryMsg>) -> Self {
        Registry {
            actor,
            _owner: None,
        }
    }

    /// The registry actor, for sending [`RegistryMsg`]s directly.
    pub fn actor(&self) -> &ActorRef<RegistryMsg> {
        &self.actor
    }

    /// Starts a process; see [`RegistryMsg::Spawn`]. Returns at once with
    /// the running snapshot (handle id, pid, command, start time).
    pub async fn spawn(&self, request: SpawnRequest) -> Result<Snapshot> {
        self.call("spawn", |tx| RegistryMsg::Spawn(request, tx))
            .await?
    }

    /// A snapshot of the handle now; never waits for the process.
    pub async fn poll(&self, id: HandleId) -> Result<Snapshot> {
        self.call("poll", |tx| RegistryMsg::Poll(id, tx)).await?
    }

    /// Waits until the handle is terminal. With a `timeout`, returns a
    /// running snapshot with `timed_out` set if it passes first, and leaves
    /// the process running.
    ///
    /// Cancel safety: dropping the future abandons the wait only; the
    /// process is not affected.
    pub async fn wait(&self, id: HandleId, timeout: Option<Duration>) -> Result<WaitOutcome> {
        self.call("wait", |tx| RegistryMsg::Wait(id, timeout, tx))
            .await?
    }

    /// Kills the process tree and returns the terminal snapshot. Killing a
    /// terminal handle is a successful no-op returning its real status.
    pub async fn kill(&self, id: HandleId, request: KillRequest) -> Result<Snapshot> {
        self.call("kill", |tx| RegistryMsg::Kill(id, request, tx))
            .await?
    }

    /// Forgets the handle, killing its tree first if it is running. Returns
    /// whether the handle was known.
    pub async fn release(&self, id: HandleId) -> Result<bool> {
        self.call("release", |tx| RegistryMsg::Release(id, tx))
            .await
    }

    /// Every handle the registry holds, oldest first.
    pub async fn list(&self) -> Result<Vec<HandleSummary>> {
        self.call("list", RegistryMsg::List).await
    }

    /// Stops the registry and waits until every process it owned is killed
    /// and reaped. Other clones of this handle then get
    /// [`Error::RegistryUnavailable`].
    pub async fn shutdown(&self) -> Result<()> {
        self.actor
            .stop_and_wait(Some("shutdown".to_owned()), None)
            .await
            .map_err(|err| Error::RegistryUnavailable {
                reason: err.to_string(),
            })
    }

    async fn call<T: Send + 'static>(
        &self,
        operation: &'static str,
        build: impl FnOnce(RpcReplyPort<T>) -> RegistryMsg,
    ) -> Result<T> {
        match self.actor.call(build, None).await {
            Ok(CallResult::Success(value)) => Ok(value),
            Ok(CallResult::Timeout | CallResult::SenderError) => Err(Error::NoReply { operation }),
            Err(err) => Err(Error::RegistryUnavailable {
                reason: err.to_string(),
            }),
        }
    }
}
