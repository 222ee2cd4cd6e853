//! [`Dispatcher`]: runs one JSON request against a registry.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::encoding::OutputLimit;
use super::error::JsonError;
use super::owned::Owned;
use super::params::Params;
use crate::error::Error;
use crate::messages::{self, HandleId, KillRequest, ListFilter, Request, Snapshot, SpawnRequest};
use crate::registry::Registry;

/// Runs JSON requests (`op` name + parameters object) against a
/// [`Registry`] and answers with a JSON result or a typed [`JsonError`].
///
/// Cloning is cheap. Requests may run concurrently: each is independent,
/// and a pending `wait` never delays another request.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use procward::json::Dispatcher;
/// use procward::{Registry, RegistryConfig};
/// use serde_json::json;
///
/// let dispatcher = Dispatcher::new(Registry::start(RegistryConfig::default()).await?);
/// let params = json!({"argv": ["echo", "hi"]});
/// let spawned = dispatcher.dispatch("spawn", params.as_object().unwrap()).await?;
/// let wait = json!({"handle_id": spawned["handle_id"]});
/// let done = dispatcher.dispatch("wait", wait.as_object().unwrap()).await?;
/// assert_eq!(done["stdout"], "hi\n");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Dispatcher {
    registry: Registry,
    owner: Option<Arc<Owner>>,
    /// The most output bytes of one stream in one answer.
    max_response_bytes: usize,
    /// The largest `output_cap` a spawn may ask for.
    max_output_cap: usize,
    /// The identity a connection's owners are bound to, if any.
    binding: Option<Arc<Binding>>,
    /// Closed (its sender dropped) when the stream this dispatcher serves
    /// stops being read; `None` when nobody says.
    input: Option<watch::Receiver<()>>,
    /// The kill that closing sends to this dispatcher's processes.
    close_kill: KillRequest,
}

/// The default cap on the output bytes of one stream in one response
/// (`poll`, `wait`, `read`, `pause`, `resume`): 16 MiB, the default
/// capture cap, so that a default capture is never cut.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The default ceiling on a spawn's `output_cap`: 64 MiB.
pub const DEFAULT_MAX_OUTPUT_CAP: usize = 64 * 1024 * 1024;

/// A connection's identity, to which the owners it names are bound.
#[derive(Debug)]
struct Binding {
    /// `uid:1000`, `conn:7`, ...: every owner the connection names becomes
    /// `identity/name`, and a spawn without an owner gets `identity`.
    identity: String,
    /// The connection sees and touches only handles whose owner is bound
    /// to its identity.
    isolated: bool,
}

/// A connection's own bookkeeping of what it spawned.
#[derive(Debug)]
struct Owner {
    tag: String,
    handles: Owned,
}

impl Dispatcher {
    /// A dispatcher for `registry` that tracks nobody's handles.
    pub fn new(registry: Registry) -> Self {
        Dispatcher {
            registry,
            owner: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_output_cap: DEFAULT_MAX_OUTPUT_CAP,
            binding: None,
            input: None,
            close_kill: KillRequest::default(),
        }
    }

    /// A dispatcher that learns when its stream stops being read: when
    /// `input` closes (its sender is dropped, with the reader that holds
    /// it), a `spawn` still waiting with `wait` sends `kill` to its process
    /// and answers with the terminal snapshot, as the close would kill the
    /// process anyway, and the server waits for spawns before it kills.
    pub(crate) fn reading(mut self, input: watch::Receiver<()>, kill: KillRequest) -> Self {
        self.input = Some(input);
        self.close_kill = kill;
        self
    }

    /// Resolves once the stream stops being read; never, if nobody says.
    pub(crate) async fn input_closed(&self) {
        match &self.input {
            Some(input) => {
                let mut input = input.clone();
                // Nothing is ever sent: only the sender's drop ends this.
                while input.changed().await.is_ok() {}
            }
            None => std::future::pending().await,
        }
    }

    /// The kill sent to a process still waited on when the stream closes.
    pub(crate) fn close_kill(&self) -> KillRequest {
        self.close_kill
    }

    /// Sets the largest `output_cap` a spawn may ask for (default
    /// [`DEFAULT_MAX_OUTPUT_CAP`]); a spawn above it is an
    /// `invalid_request` naming the ceiling.
    pub fn with_max_output_cap(mut self, bytes: usize) -> Self {
        self.max_output_cap = bytes;
        self
    }

    /// The largest `output_cap` a spawn may ask for.
    pub fn max_output_cap(&self) -> usize {
        self.max_output_cap
    }

    /// Binds the owners this dispatcher's requests name to `identity`: a
    /// spawn's `owner` becomes `identity/owner` (just `identity` when it
    /// names none), and `list`, `kill_owner` and `release_owner` read
    /// `owner` the same way. With `isolated`, `list` shows only the
    /// handles so bound, and every op on another handle fails as
    /// `unknown_handle`, as if it did not exist.
    pub fn bound_to(mut self, identity: impl Into<String>, isolated: bool) -> Self {
        self.binding = Some(Arc::new(Binding {
            identity: identity.into(),
            isolated,
        }));
        self
    }

    /// The owner key a request naming `owner` means: `owner` itself, or
    /// bound to the connection's identity.
    pub(crate) fn owner_key(&self, owner: Option<&str>) -> Option<String> {
        match (&self.binding, owner) {
            (None, owner) => owner.map(str::to_owned),
            (Some(binding), None) => Some(binding.identity.clone()),
            (Some(binding), Some(owner)) => Some(format!("{}/{owner}", binding.identity)),
        }
    }

    /// `request` with its owner bound to the connection's identity.
    pub(crate) fn bind_owner(&self, mut request: SpawnRequest) -> SpawnRequest {
        if self.binding.is_some() {
            request.owner = self.owner_key(request.owner.as_deref());
        }
        request
    }

    /// Whether this dispatcher may see a handle of `owner`.
    pub(crate) fn may_see(&self, owner: Option<&str>) -> bool {
        let Some(binding) = self.binding.as_deref().filter(|binding| binding.isolated) else {
            return true;
        };
        owner.is_some_and(|owner| bound_within(&binding.identity, owner))
    }

    /// Fails as an unknown handle when this dispatcher is isolated and `id`
    /// is not one of its own; the snapshot is returned for ops that need it.
    pub(crate) async fn check_access(&self, id: HandleId) -> Result<Option<Snapshot>, JsonError> {
        if !self
            .binding
            .as_deref()
            .is_some_and(|binding| binding.isolated)
        {
            return Ok(None);
        }
        let snapshot = self.registry.poll(id).await?;
        if !self.may_see(snapshot.owner.as_deref()) {
            return Err(Error::UnknownHandle(id).into());
        }
        Ok(Some(snapshot))
    }

    /// Runs one registry operation under this connection's rules, the
    /// same for every op that is one: the owners `request` names are bound
    /// to the connection's identity (see [`bound_to`](Self::bound_to));
    /// when isolated, a handle of another identity is an unknown handle and
    /// a listing leaves such handles out. The registry side is
    /// [`Registry::execute`], which the cluster gateway shares.
    pub(crate) async fn execute(&self, request: Request) -> Result<messages::Answer, JsonError> {
        let request = self.bind(request);
        if let Some(id) = request.handle_id() {
            let checked = self.check_access(id).await?;
            if let (Some(snapshot), Request::Poll { .. }) = (checked, &request) {
                // The access check polled the handle already.
                return Ok(messages::Answer::Snapshot(snapshot));
            }
        }
        let mut answer = self.registry.execute(request).await?;
        if let messages::Answer::Listed(handles) = &mut answer {
            handles.retain(|summary| self.may_see(summary.owner.as_deref()));
        }
        Ok(answer)
    }

    /// `request` with every owner it names bound to the connection's
    /// identity.
    fn bind(&self, request: Request) -> Request {
        let bound = |owner: String| self.owner_key(Some(&owner)).unwrap_or_default();
        match request {
            Request::Spawn(spawn) => Request::Spawn(self.bind_owner(spawn)),
            Request::List(filter) => Request::List(ListFilter {
                owner: filter.owner.map(bound),
                ..filter
            }),
            Request::KillOwner {
                owner,
                request,
                close,
            } => Request::KillOwner {
                owner: bound(owner),
                request,
                close,
            },
            Request::ReopenOwner { owner } => Request::ReopenOwner {
                owner: bound(owner),
            },
            Request::ReleaseOwner { owner } => Request::ReleaseOwner {
                owner: bound(owner),
            },
            // About one handle, which `execute` checks, or about none.
            request @ (Request::Poll { .. }
            | Request::Wait { .. }
            | Request::Kill { .. }
            | Request::Release { .. }
            | Request::Pause { .. }
            | Request::Resume { .. }
            | Request::Read { .. }
            | Request::Write { .. }
            | Request::CloseStdin { .. }
            | Request::Counts) => request,
        }
    }

    /// A dispatcher on the same registry for one connection, tagged `tag`
    /// (for logs). It remembers the handles it spawns, except those spawned
    /// with `outlive_connection`, so that
    /// [`kill_owned`](Self::kill_owned) can kill them when the connection
    /// closes.
    ///
    /// The handles are kept by a task of their own, started on the current
    /// Tokio runtime: called outside one, the dispatcher remembers nothing
    /// (and [`kill_owned`](Self::kill_owned) kills nothing).
    pub fn for_connection(&self, tag: impl Into<String>) -> Self {
        let tag = tag.into();
        let owner = match Owned::start(self.registry.clone()) {
            Some(handles) => Some(Arc::new(Owner { tag, handles })),
            None => {
                tracing::warn!(connection = %tag, "no Tokio runtime: the connection's handles are not remembered");
                None
            }
        };
        Dispatcher {
            owner,
            ..self.clone()
        }
    }

    /// The same dispatcher with the cap on the output bytes of one stream
    /// in one answer (`poll`, `wait`, `read`, `pause`, `resume`) set to
    /// `bytes`; the default is [`DEFAULT_MAX_RESPONSE_BYTES`]. A request's
    /// own `max_bytes` can only lower it.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The cap for one answer: the request's `max_bytes` (when given),
    /// never above the dispatcher's.
    pub(crate) fn output_limit(&self, params: Params<'_>) -> Result<OutputLimit, JsonError> {
        let asked = params
            .count("max_bytes")?
            .map_or(usize::MAX, |max| usize::try_from(max).unwrap_or(usize::MAX));
        Ok(OutputLimit {
            max_bytes: asked.min(self.max_response_bytes),
        })
    }

    /// The dispatcher's own cap, for answers without a `max_bytes`.
    pub(crate) fn default_output_limit(&self) -> OutputLimit {
        OutputLimit {
            max_bytes: self.max_response_bytes,
        }
    }

    /// The registry requests run against.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Kills every running process this connection spawned (those asked to
    /// outlive it excepted), all at once, and waits until each is terminal
    /// or `deadline` passes. Returns how many kills were sent. A dispatcher
    /// made with [`new`](Self::new) owns nothing and returns 0.
    pub async fn kill_owned(&self, request: KillRequest, deadline: Duration) -> usize {
        let Some(owner) = &self.owner else {
            return 0;
        };
        let ids = owner.handles.take().await;
        tracing::debug!(connection = %owner.tag, handles = ids.len(), "killing the connection's processes");
        kill_all(&self.registry, ids, request, deadline).await
    }

    pub(crate) async fn track(&self, id: HandleId) {
        if let Some(owner) = &self.owner {
            owner.handles.track(id);
        }
    }

    pub(crate) fn untrack(&self, id: HandleId) {
        if let Some(owner) = &self.owner {
            owner.handles.untrack(id);
        }
    }
}

/// Whether `owner` is bound to `identity`: it is `identity`, or
/// `identity/...` (`conn:1/x`, not `conn:10/x`).
fn bound_within(identity: &str, owner: &str) -> bool {
    owner
        .strip_prefix(identity)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Kills `ids` concurrently and waits for every answer, or until
/// `deadline`. Handles that are unknown or already terminal are fine.
pub(crate) async fn kill_all(
    registry: &Registry,
    ids: Vec<HandleId>,
    request: KillRequest,
    deadline: Duration,
) -> usize {
    let count = ids.len();
    let mut kills = JoinSet::new();
    for id in ids {
        let registry = registry.clone();
        kills.spawn(async move {
            match registry.kill(id, request).await {
                Ok(_) | Err(Error::UnknownHandle(_)) => {}
                // Stopping the registry kills and reaps everything anyway.
                Err(err @ Error::RegistryUnavailable { .. }) => {
                    tracing::debug!(handle = %id, %err, "registry already stopped");
                }
                Err(err) => tracing::warn!(handle = %id, %err, "kill failed"),
            }
        });
    }
    let all_done = async { while kills.join_next().await.is_some() {} };
    if tokio::time::timeout(deadline, all_done).await.is_err() {
        tracing::warn!(?deadline, "some kills did not finish in time");
    }
    count
}

#[cfg(test)]
mod tests {
    use super::bound_within;

    #[test]
    fn an_owner_is_bound_to_its_identity_only() {
        assert!(bound_within("conn:1", "conn:1"));
        assert!(bound_within("conn:1", "conn:1/job"));
        assert!(bound_within("uid:0", "uid:0/uid:5/x"));
        assert!(!bound_within("conn:1", "conn:10"));
        assert!(!bound_within("conn:1", "conn:10/job"));
        assert!(!bound_within("uid:0", "job"));
        assert!(!bound_within("uid:0", ""));
    }
}
