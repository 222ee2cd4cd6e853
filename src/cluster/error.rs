//! [`RemoteError`]: a serializable error that crosses node boundaries.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};
use crate::messages::UnexpectedAnswer;
use crate::policy::DenyRule;

/// What kind of failure a [`RemoteError`] reports: what a caller can branch
/// on without reading the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RemoteErrorKind {
    /// The request was rejected before anything was started.
    InvalidRequest,
    /// The OS on the node refused to start the program.
    SpawnFailed,
    /// The node's spawn policy refused the request.
    PolicyDenied,
    /// No handle with this id is known on that node.
    UnknownHandle,
    /// A read asked for an offset past what the stream has seen.
    OffsetOutOfRange,
    /// A write or close went to a stdin that is already closed.
    StdinClosed,
    /// A write or close went to a process whose stdin is not a pipe.
    StdinNotPiped,
    /// The node's registry is not running or did not answer.
    RegistryUnavailable,
    /// The node's registry is full of running processes and its cap
    /// policy refused the spawn.
    RegistryFull,
    /// A spawn queued on the node was cancelled by a kill of its owner.
    Cancelled,
    /// The node disconnected or died, or the request could not reach it.
    NodeUnavailable,
    /// No connected node has this name.
    UnknownNode,
    /// No remote subscription with this id is alive on that node: it was
    /// ended, or the subscriber's session closed.
    UnknownSubscription,
    /// The client is connected to no node that could take the request.
    NoNodes,
    /// Connecting to a node failed: the address is unreachable, or the
    /// node refused the session (a wrong cookie), or it did not offer a
    /// procward registry in time.
    Connect,
    /// A message could not be encoded or decoded (a peer of another
    /// version, or a corrupted frame).
    Protocol,
    /// An answer was larger than a cluster frame may be; use `read` to
    /// fetch output in pieces.
    TooLarge,
    /// Anything else that failed on the node.
    Internal,
    /// A kind this version does not know (sent by a newer peer).
    #[serde(other)]
    Other,
}

/// A failure of a request to a remote registry: its [`kind`](Self::kind)
/// and a human message. Unlike [`Error`] it holds only plain data, so it
/// can travel between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct RemoteError {
    /// What kind of failure.
    pub kind: RemoteErrorKind,
    /// What went wrong, for people.
    pub message: String,
    /// For a [`RemoteErrorKind::PolicyDenied`] error, which kind of rule
    /// refused the spawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<DenyRule>,
}

impl RemoteError {
    /// An error of `kind` with `message`.
    pub fn new(kind: RemoteErrorKind, message: impl Into<String>) -> Self {
        RemoteError {
            kind,
            message: message.into(),
            rule: None,
        }
    }

    /// The node `node` is gone or cannot be reached.
    pub fn node_unavailable(node: &str, why: impl std::fmt::Display) -> Self {
        RemoteError::new(
            RemoteErrorKind::NodeUnavailable,
            format!("node `{node}` is unavailable: {why}"),
        )
    }

    /// Whether this error says that the node is gone.
    pub fn is_node_unavailable(&self) -> bool {
        self.kind == RemoteErrorKind::NodeUnavailable
    }
}

impl From<Error> for RemoteError {
    fn from(err: Error) -> Self {
        let kind = match err.kind() {
            ErrorKind::InvalidRequest => RemoteErrorKind::InvalidRequest,
            ErrorKind::SpawnFailed => RemoteErrorKind::SpawnFailed,
            ErrorKind::PolicyDenied => RemoteErrorKind::PolicyDenied,
            ErrorKind::UnknownHandle => RemoteErrorKind::UnknownHandle,
            ErrorKind::OffsetOutOfRange => RemoteErrorKind::OffsetOutOfRange,
            ErrorKind::StdinClosed => RemoteErrorKind::StdinClosed,
            ErrorKind::StdinNotPiped => RemoteErrorKind::StdinNotPiped,
            ErrorKind::RegistryUnavailable => RemoteErrorKind::RegistryUnavailable,
            ErrorKind::RegistryFull => RemoteErrorKind::RegistryFull,
            ErrorKind::Cancelled => RemoteErrorKind::Cancelled,
            ErrorKind::Internal => RemoteErrorKind::Internal,
        };
        let rule = match &err {
            Error::PolicyDenied { rule, .. } => Some(*rule),
            _ => None,
        };
        RemoteError {
            rule,
            ..RemoteError::new(kind, err.to_string())
        }
    }
}

impl From<UnexpectedAnswer> for RemoteError {
    fn from(err: UnexpectedAnswer) -> Self {
        RemoteError::new(
            RemoteErrorKind::Protocol,
            format!("the node does not speak this version's protocol: {err}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HandleId;

    #[test]
    fn maps_unknown_handle() {
        let id: HandleId = "psh-1-1".parse().unwrap();
        let err = RemoteError::from(Error::UnknownHandle(id));
        assert_eq!(err.kind, RemoteErrorKind::UnknownHandle);
        assert!(err.message.contains("psh-1-1"));
    }

    #[test]
    fn an_answer_of_the_wrong_kind_is_a_protocol_error() {
        let wrong = crate::messages::Answer::Done.into_snapshot().unwrap_err();
        let err = RemoteError::from(wrong);
        assert_eq!(err.kind, RemoteErrorKind::Protocol);
        assert!(err.message.contains("expected Snapshot"), "{err}");
    }

    #[test]
    fn unknown_kind_decodes_as_other() {
        let err: RemoteError =
            serde_json::from_str(r#"{"kind":"from_the_future","message":"x"}"#).unwrap();
        assert_eq!(err.kind, RemoteErrorKind::Other);
    }
}
