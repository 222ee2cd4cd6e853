//! The one error type of procward: what went wrong, and with what.

use std::borrow::Cow;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod deny_rule;

pub use deny_rule::DenyRule;

use crate::messages::handle_id::{HandleId, MalformedHandleId};

/// Everything that can go wrong when asking procward to do something.
///
/// Per-request failures (a bad request, a program that does not exist, an
/// unknown handle) come back to the caller as this error; they never stop the
/// registry. OS errors are kept as the [`source`](std::error::Error::source),
/// as an [`OsError`].
///
/// `Error` is plain data: `Clone`, `Serialize` and `Deserialize`, so a
/// report that carries it can cross actors, processes and machines. The OS
/// error inside keeps its [`io::ErrorKind`], its errno and its message
/// through a round trip (see [`OsError`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Error {
    /// The request was rejected before anything was started: an empty argv,
    /// a NUL byte in an argument, a zero timeout, an unknown signal, ...
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong with the request, naming the field.
        reason: String,
    },

    /// The OS refused to start the program (it does not exist, is not
    /// executable, the working directory is missing, ...).
    #[error("failed to start `{program}`{}: {source}", cwd_suffix(.cwd))]
    Spawn {
        /// The program that was to be started (`/bin/sh` for shell commands).
        program: String,
        /// The working directory that was asked for, if any.
        cwd: Option<PathBuf>,
        /// The OS error.
        #[source]
        source: OsError,
    },

    /// The registry's spawn policy refused the request; nothing was
    /// started.
    #[error("spawn denied by policy: {reason}")]
    PolicyDenied {
        /// Which kind of rule refused it (a `Concurrency` denial may pass
        /// later).
        rule: DenyRule,
        /// What the policy refused.
        reason: String,
    },

    /// No handle with this id is known to the registry: it never existed, it
    /// was released, or its receipt was pushed out of the receipt cap.
    #[error("unknown or expired handle `{0}`")]
    UnknownHandle(HandleId),

    /// A string that is not a procward handle id (`psh-<pid hex>-<n>`).
    #[error("malformed handle id `{0}`: expected psh-<pid hex>-<n>")]
    MalformedHandle(String),

    /// The registry actor is not running (it was stopped, or its supervisor
    /// stopped it), so the request could not be delivered.
    #[error("the registry is not running: {cause}")]
    RegistryUnavailable {
        /// Why the request could not be delivered.
        cause: Unavailable,
    },

    /// The actor holding the request stopped before it answered. The
    /// process it owned has been killed.
    #[error("the actor handling `{operation}` stopped before answering")]
    NoReply {
        /// The operation that went unanswered (`spawn`, `poll`, ...).
        operation: Cow<'static, str>,
    },

    /// The registry holds `max_handles` running handles and the spawn's
    /// [`CapPolicy`](crate::CapPolicy) would not evict one: `Refuse`, or
    /// `Queue` with its queue full. Nothing was started and nothing was
    /// killed; the spawn may pass once a handle ends.
    #[error("the registry is full: {max_handles} handles running{}", queue_suffix(*.max_queued))]
    RegistryFull {
        /// The registry's cap.
        max_handles: usize,
        /// `None` under `Refuse`; under `Queue`, its bound, reached.
        max_queued: Option<usize>,
    },

    /// A spawn waiting in the registry's queue (cap policy `Queue`) was
    /// dropped by a `KillOwner` or `CloseOwner` of its owner before it
    /// started. Nothing was started.
    #[error("the queued spawn of owner {owner:?} was cancelled before it started")]
    SpawnCancelled {
        /// The owner whose processes were killed.
        owner: String,
    },

    /// The stdin of this process is closed: the process exited or closed
    /// it, or `close_stdin` was called; or stdin was given as bytes at spawn.
    #[error("the stdin of `{0}` is closed")]
    StdinClosed(HandleId),

    /// The process was not spawned with a piped stdin
    /// ([`Stdin::Pipe`](crate::messages::Stdin::Pipe)), so nothing can be
    /// written to it.
    #[error("the stdin of `{0}` is not a pipe: spawn it with Stdin::Pipe to write to it")]
    StdinNotPiped(HandleId),

    /// A read asked for an offset beyond what the stream has seen.
    #[error("offset {offset} is past the {total} bytes written to {stream} of `{handle}`")]
    OffsetOutOfRange {
        /// The handle.
        handle: HandleId,
        /// `"stdout"` or `"stderr"`.
        stream: Cow<'static, str>,
        /// The offset asked for.
        offset: u64,
        /// Bytes written so far.
        total: u64,
    },

    /// An OS call that procward needs failed.
    #[error("{operation} failed: {source}")]
    Os {
        /// What procward was doing.
        operation: Cow<'static, str>,
        /// The OS error.
        #[source]
        source: OsError,
    },

    /// cgroup containment failed: the registry was told to require a
    /// cgroup and none could be made, or a spawn's cgroup could not be made
    /// (nothing was started then).
    #[error("{operation} failed for `{}`: {source}", .path.display())]
    Containment {
        /// What procward was doing.
        operation: Cow<'static, str>,
        /// The cgroup directory concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: OsError,
    },

    /// A ractor actor could not be started.
    #[error("could not start the {actor} actor: {cause}")]
    ActorStart {
        /// Which actor (`registry` or `process`).
        actor: Cow<'static, str>,
        /// Why it did not start.
        cause: StartFailure,
    },
}

/// An OS error as plain data: its [`io::ErrorKind`], its errno when it had
/// one, and its message. Made from an [`io::Error`] with `From`, and turned
/// back into one with `From` (the same errno, hence the same kind and
/// message, when it had one).
///
/// It serializes as `{"kind": "NotFound", "code": 2, "message": "..."}`,
/// the kind spelled as `io::ErrorKind`'s `Debug`. Decoding takes the kind
/// from `code` when there is one (exact on Linux); without a code it reads
/// the name, and a kind this build does not know by name becomes
/// `io::ErrorKind::Other` (the message is kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(into = "OsErrorData", from = "OsErrorData")]
#[error("{message}")]
pub struct OsError {
    kind: io::ErrorKind,
    code: Option<i32>,
    message: String,
}

impl OsError {
    /// The kind of the OS error, as `io::Error::kind` gave it.
    pub fn kind(&self) -> io::ErrorKind {
        self.kind
    }

    /// The errno, when the error came from the OS with one.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.code
    }

    /// The message, as `io::Error`'s `Display` gave it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<io::Error> for OsError {
    fn from(err: io::Error) -> Self {
        OsError {
            kind: err.kind(),
            code: err.raw_os_error(),
            message: err.to_string(),
        }
    }
}

impl From<OsError> for io::Error {
    fn from(err: OsError) -> Self {
        match err.code {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(err.kind, err.message),
        }
    }
}

/// [`OsError`] on the wire.
#[derive(Serialize, Deserialize)]
struct OsErrorData {
    kind: String,
    #[serde(default)]
    code: Option<i32>,
    message: String,
}

impl From<OsError> for OsErrorData {
    fn from(err: OsError) -> Self {
        OsErrorData {
            kind: format!("{:?}", err.kind),
            code: err.code,
            message: err.message,
        }
    }
}

impl From<OsErrorData> for OsError {
    fn from(data: OsErrorData) -> Self {
        let kind = match data.code {
            Some(code) => io::Error::from_raw_os_error(code).kind(),
            None => kind_named(&data.kind),
        };
        OsError {
            kind,
            code: data.code,
            message: data.message,
        }
    }
}

/// The `io::ErrorKind` whose `Debug` name is `name`, among the kinds stable
/// at the crate's minimum Rust version; `Other` for any other name.
fn kind_named(name: &str) -> io::ErrorKind {
    use io::ErrorKind::*;
    [
        NotFound,
        PermissionDenied,
        ConnectionRefused,
        ConnectionReset,
        ConnectionAborted,
        NotConnected,
        AddrInUse,
        AddrNotAvailable,
        BrokenPipe,
        AlreadyExists,
        WouldBlock,
        InvalidInput,
        InvalidData,
        TimedOut,
        WriteZero,
        Interrupted,
        Unsupported,
        UnexpectedEof,
        OutOfMemory,
    ]
    .into_iter()
    .find(|kind| format!("{kind:?}") == name)
    .unwrap_or(Other)
}

/// Why the registry could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Unavailable {
    /// The actor is not running: it was stopped or killed (by its handle,
    /// its supervisor or a failure), so its mailbox is closed.
    #[error("it has stopped")]
    Stopped,
    /// The registry is stopping: a spawn still waiting in its queue, or
    /// still starting (its child is killed and reaped), was dropped.
    #[error("it is stopping")]
    Stopping,
    /// The actor reference is not of a registry actor.
    #[error("the actor is not a procward registry")]
    WrongActorType,
}

impl<T> From<ractor::MessagingErr<T>> for Unavailable {
    fn from(err: ractor::MessagingErr<T>) -> Self {
        match err {
            ractor::MessagingErr::InvalidActorType => Unavailable::WrongActorType,
            ractor::MessagingErr::SendErr(_) | ractor::MessagingErr::ChannelClosed => {
                Unavailable::Stopped
            }
        }
    }
}

impl<T> From<ractor::RactorErr<T>> for Unavailable {
    fn from(err: ractor::RactorErr<T>) -> Self {
        match err {
            ractor::RactorErr::Messaging(err) => err.into(),
            // Without a timeout nor a spawn, only a stopped actor is left.
            ractor::RactorErr::Spawn(_)
            | ractor::RactorErr::Actor(_)
            | ractor::RactorErr::Timeout => Unavailable::Stopped,
        }
    }
}

/// Why an actor did not start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StartFailure {
    /// Its start failed with this procward error (an invalid config, an OS
    /// call such as starting the guard).
    #[error("{0}")]
    Failed(Box<Error>),
    /// Its start panicked or failed with an error that is not procward's;
    /// what it said.
    #[error("{message}")]
    Panicked {
        /// The panic or error message.
        message: String,
    },
    /// The actor was already started.
    #[error("it was already started")]
    AlreadyStarted,
    /// An actor with this name is already registered with ractor.
    #[error("the name `{name}` is taken")]
    NameTaken {
        /// The name.
        name: String,
    },
}

impl From<ractor::SpawnErr> for StartFailure {
    fn from(err: ractor::SpawnErr) -> Self {
        match err {
            ractor::SpawnErr::StartupFailed(err) => match err.downcast::<Error>() {
                Ok(err) => StartFailure::Failed(err),
                Err(err) => StartFailure::Panicked {
                    message: err.to_string(),
                },
            },
            ractor::SpawnErr::ActorAlreadyStarted => StartFailure::AlreadyStarted,
            ractor::SpawnErr::ActorAlreadyRegistered(name) => StartFailure::NameTaken { name },
        }
    }
}

fn queue_suffix(max_queued: Option<usize>) -> String {
    match max_queued {
        Some(max) => format!(" and {max} spawns queued"),
        None => String::new(),
    }
}

fn cwd_suffix(cwd: &Option<PathBuf>) -> String {
    match cwd {
        Some(dir) => format!(" in `{}`", dir.display()),
        None => String::new(),
    }
}

/// What kind of failure an [`Error`] is: what a caller (or a protocol
/// that carries errors, like the JSON server and the cluster) can branch on
/// without reading the message. [`Error::kind`] sorts every variant with an
/// exhaustive match, so a new variant cannot fall into `Internal` unseen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is wrong and would be wrong again: fix it.
    InvalidRequest,
    /// The OS refused to start the program.
    SpawnFailed,
    /// The spawn policy refused the request.
    PolicyDenied,
    /// No such handle: never known, released, or its receipt expired; or a
    /// string that is not a handle id at all (it names no handle either).
    UnknownHandle,
    /// A read asked for an offset past what the stream has seen.
    OffsetOutOfRange,
    /// A write or close went to a stdin that is already closed.
    StdinClosed,
    /// A write or close went to a process whose stdin is not a pipe.
    StdinNotPiped,
    /// The registry is not running, or the actor holding the request
    /// stopped before it answered.
    RegistryUnavailable,
    /// The registry is full and its cap policy refused to evict a running
    /// handle; the same spawn may pass later.
    RegistryFull,
    /// A queued spawn was cancelled by a kill of its owner.
    Cancelled,
    /// procward itself failed (an OS call it needs, an actor that would not
    /// start).
    Internal,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidRequest { .. } => ErrorKind::InvalidRequest,
            Error::Spawn { .. } | Error::Containment { .. } => ErrorKind::SpawnFailed,
            Error::PolicyDenied { .. } => ErrorKind::PolicyDenied,
            Error::UnknownHandle(_) | Error::MalformedHandle(_) => ErrorKind::UnknownHandle,
            Error::OffsetOutOfRange { .. } => ErrorKind::OffsetOutOfRange,
            Error::StdinClosed(_) => ErrorKind::StdinClosed,
            Error::StdinNotPiped(_) => ErrorKind::StdinNotPiped,
            Error::RegistryUnavailable { .. } | Error::NoReply { .. } => {
                ErrorKind::RegistryUnavailable
            }
            Error::RegistryFull { .. } => ErrorKind::RegistryFull,
            Error::SpawnCancelled { .. } => ErrorKind::Cancelled,
            Error::Os { .. } | Error::ActorStart { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Error::InvalidRequest {
            reason: reason.into(),
        }
    }

    /// An OS call failed while procward was doing `operation`.
    pub(crate) fn os(operation: &'static str, source: io::Error) -> Self {
        Error::Os {
            operation: Cow::Borrowed(operation),
            source: source.into(),
        }
    }

    /// The request could not be delivered to the registry.
    pub(crate) fn unavailable(cause: impl Into<Unavailable>) -> Self {
        Error::RegistryUnavailable {
            cause: cause.into(),
        }
    }

    /// The actor answering `operation` stopped before it answered.
    pub(crate) fn no_reply(operation: &'static str) -> Self {
        Error::NoReply {
            operation: Cow::Borrowed(operation),
        }
    }

    /// The `actor` actor did not start.
    pub(crate) fn actor_start(actor: &'static str, err: ractor::SpawnErr) -> Self {
        Error::ActorStart {
            actor: Cow::Borrowed(actor),
            cause: err.into(),
        }
    }
}

/// `Result` with procward's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<MalformedHandleId> for Error {
    fn from(malformed: MalformedHandleId) -> Self {
        Error::MalformedHandle(malformed.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(err: &Error) -> Error {
        let json = serde_json::to_string(err).unwrap();
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn os_errors_keep_kind_code_and_message_through_serde() {
        let err = Error::Spawn {
            program: "/nope".into(),
            cwd: None,
            source: io::Error::from_raw_os_error(libc::ENOENT).into(),
        };
        let back = round_trip(&err);
        assert_eq!(back, err);
        let Error::Spawn { source, .. } = &back else {
            panic!("{back:?}");
        };
        assert_eq!(source.kind(), io::ErrorKind::NotFound);
        assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(back.to_string(), err.to_string());
        assert_eq!(
            io::Error::from(source.clone()).kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn os_errors_without_a_code_keep_their_kind_by_name() {
        let source: OsError = io::Error::new(io::ErrorKind::BrokenPipe, "gone").into();
        let json = serde_json::to_value(&source).unwrap();
        assert_eq!(json["kind"], "BrokenPipe");
        let back: OsError = serde_json::from_value(json).unwrap();
        assert_eq!(back.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(back.message(), "gone");
        let odd: OsError =
            serde_json::from_str(r#"{"kind":"SomethingNew","message":"m"}"#).unwrap();
        assert_eq!(odd.kind(), io::ErrorKind::Other);
    }

    #[test]
    fn every_variant_round_trips_and_keeps_its_kind() {
        let id = HandleId::next(1);
        let errors = [
            Error::invalid("x"),
            Error::os("reading", io::Error::from_raw_os_error(libc::EBADF)),
            Error::UnknownHandle(id),
            Error::MalformedHandle("nope".into()),
            Error::unavailable(Unavailable::Stopping),
            Error::no_reply("wait"),
            Error::RegistryFull {
                max_handles: 2,
                max_queued: None,
            },
            Error::RegistryFull {
                max_handles: 2,
                max_queued: Some(8),
            },
            Error::SpawnCancelled { owner: "o".into() },
            Error::StdinClosed(id),
            Error::StdinNotPiped(id),
            Error::OffsetOutOfRange {
                handle: id,
                stream: "stderr".into(),
                offset: 9,
                total: 3,
            },
            Error::ActorStart {
                actor: "registry".into(),
                cause: StartFailure::Failed(Box::new(Error::invalid("max_handles"))),
            },
            Error::PolicyDenied {
                rule: DenyRule::Concurrency,
                reason: "busy".into(),
            },
        ];
        for err in errors {
            let back = round_trip(&err);
            assert_eq!(back, err);
            assert_eq!(back.kind(), err.kind());
            assert_eq!(back.to_string(), err.to_string());
        }
    }

    #[test]
    fn a_failed_start_keeps_procward_s_error_as_data() {
        let spawn_err = ractor::SpawnErr::StartupFailed(Box::new(Error::invalid("bad")));
        let err = Error::actor_start("registry", spawn_err);
        assert!(matches!(
            &err,
            Error::ActorStart { cause: StartFailure::Failed(inner), .. }
                if inner.kind() == ErrorKind::InvalidRequest
        ));
    }
}
