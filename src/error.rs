//! The one error type of procward: what went wrong, and with what.

use std::io;
use std::path::PathBuf;

use crate::messages::HandleId;

/// Everything that can go wrong when asking procward to do something.
///
/// Per-request failures (a bad request, a program that does not exist, an
/// unknown handle) come back to the caller as this error; they never stop the
/// registry. OS errors are kept as the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
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
        source: io::Error,
    },

    /// The registry's spawn policy refused the request; nothing was
    /// started.
    #[error("spawn denied by policy: {reason}")]
    PolicyDenied {
        /// Which kind of rule refused it (a `Concurrency` denial may pass
        /// later).
        rule: crate::policy::DenyRule,
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
    #[error("the registry is not running: {reason}")]
    RegistryUnavailable {
        /// Why the request could not be delivered.
        reason: String,
    },

    /// The actor holding the request stopped before it answered. The
    /// process it owned has been killed.
    #[error("the actor handling `{operation}` stopped before answering")]
    NoReply {
        /// The operation that went unanswered (`spawn`, `poll`, ...).
        operation: &'static str,
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
        stream: &'static str,
        /// The offset asked for.
        offset: u64,
        /// Bytes written so far.
        total: u64,
    },

    /// An OS call that procward needs failed.
    #[error("{operation} failed: {source}")]
    Os {
        /// What procward was doing.
        operation: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// cgroup containment failed: the registry was told to require a
    /// cgroup and none could be made, or a spawn's cgroup could not be made
    /// (nothing was started then).
    #[error("{operation} failed for `{}`: {source}", .path.display())]
    Containment {
        /// What procward was doing.
        operation: &'static str,
        /// The cgroup directory concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// A ractor actor could not be started.
    #[error("could not start the {actor} actor: {reason}")]
    ActorStart {
        /// Which actor (`registry` or `process`).
        actor: &'static str,
        /// The reason ractor gave.
        reason: String,
    },
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
            Error::Os { .. } | Error::ActorStart { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Error::InvalidRequest {
            reason: reason.into(),
        }
    }
}

/// `Result` with procward's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
