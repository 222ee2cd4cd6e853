//! [`JsonError`]: why a JSON request failed, and the protocol [`ErrorKind`]
//! it is reported as.

use serde::Serialize;

use crate::error::Error;
use crate::messages::UnexpectedAnswer;
use crate::policy::DenyRule;

/// The `kind` of an error response: what a client can branch on without
/// reading the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The line is not JSON (or is empty).
    ParseError,
    /// The line is JSON but not a valid request: not an object, no `op`, a
    /// parameter missing or of the wrong type, a line over the size cap, or
    /// a spawn request the library rejects (empty argv, NUL byte, ...).
    InvalidRequest,
    /// No op of that name.
    UnknownOp,
    /// The `handle_id` names no handle the registry holds (never existed,
    /// released, its receipt expired, or not a procward handle id at all).
    UnknownHandle,
    /// The OS refused to start the program.
    SpawnFailed,
    /// The registry's spawn policy refused the request (nothing was
    /// started), for example a `sandbox_profile` the server does not have.
    PolicyDenied,
    /// The registry is full of running processes and its cap policy
    /// (`--cap-policy refuse`, or `queue:N` with its queue full) refused
    /// the spawn; nothing was started or killed.
    RegistryFull,
    /// A spawn waiting in the queue (`--cap-policy queue`) was dropped by a
    /// `kill_owner`/`close_owner` of its owner.
    Cancelled,
    /// procward itself failed (the registry stopped, an actor died, ...).
    Internal,
}

impl ErrorKind {
    /// The kind as written in responses (`parse_error`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ParseError => "parse_error",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::UnknownOp => "unknown_op",
            ErrorKind::UnknownHandle => "unknown_handle",
            ErrorKind::SpawnFailed => "spawn_failed",
            ErrorKind::PolicyDenied => "policy_denied",
            ErrorKind::RegistryFull => "registry_full",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a JSON request failed. Its [`kind`](Self::kind) is the protocol's
/// error kind; its `Display` is the human message of the error response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The line could not be parsed as JSON.
    #[error("{0}")]
    Parse(String),

    /// The request is malformed; the message names the field.
    #[error("{0}")]
    InvalidRequest(String),

    /// No op of this name exists.
    #[error("unknown op {}; known ops: {}", quoted(.op), .known.join(", "))]
    UnknownOp {
        /// The op the request named.
        op: String,
        /// The ops this version serves.
        known: &'static [&'static str],
    },

    /// A handler task failed without an answer (it panicked).
    #[error("internal error: {0}")]
    Internal(String),

    /// The registry refused or failed the request.
    #[error(transparent)]
    Registry(#[from] Error),
}

impl JsonError {
    /// For a `policy_denied` error, which kind of rule refused the spawn.
    pub fn rule(&self) -> Option<DenyRule> {
        match self {
            JsonError::Registry(Error::PolicyDenied { rule, .. }) => Some(*rule),
            _ => None,
        }
    }

    /// The protocol error kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            JsonError::Parse(_) => ErrorKind::ParseError,
            JsonError::InvalidRequest(_) => ErrorKind::InvalidRequest,
            JsonError::UnknownOp { .. } => ErrorKind::UnknownOp,
            JsonError::Internal(_) => ErrorKind::Internal,
            JsonError::Registry(err) => registry_kind(err),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        JsonError::InvalidRequest(message.into())
    }
}

impl From<UnexpectedAnswer> for JsonError {
    fn from(err: UnexpectedAnswer) -> Self {
        // The registry's executor answers every request with its variant:
        // this is a bug in procward, not in the request.
        JsonError::Internal(err.to_string())
    }
}

fn registry_kind(err: &Error) -> ErrorKind {
    use crate::error::ErrorKind as Kind;
    match err.kind() {
        // The request does not fit the handle's state: still the caller's
        // request to fix.
        Kind::InvalidRequest | Kind::StdinClosed | Kind::StdinNotPiped | Kind::OffsetOutOfRange => {
            ErrorKind::InvalidRequest
        }
        Kind::SpawnFailed => ErrorKind::SpawnFailed,
        Kind::PolicyDenied => ErrorKind::PolicyDenied,
        Kind::UnknownHandle => ErrorKind::UnknownHandle,
        Kind::RegistryFull => ErrorKind::RegistryFull,
        Kind::Cancelled => ErrorKind::Cancelled,
        Kind::RegistryUnavailable | Kind::Internal => ErrorKind::Internal,
    }
}

/// How many characters of a caller's string an error message repeats.
const PREVIEW_CHARS: usize = 64;

/// `text` quoted and escaped for an error message, cut to
/// [`PREVIEW_CHARS`] characters so a huge value does not make a huge
/// message.
pub(crate) fn quoted(text: &str) -> String {
    match text.char_indices().nth(PREVIEW_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_written_in_snake_case() {
        for kind in [
            ErrorKind::ParseError,
            ErrorKind::InvalidRequest,
            ErrorKind::UnknownOp,
            ErrorKind::UnknownHandle,
            ErrorKind::SpawnFailed,
            ErrorKind::PolicyDenied,
            ErrorKind::RegistryFull,
            ErrorKind::Cancelled,
            ErrorKind::Internal,
        ] {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
        }
    }

    #[test]
    fn registry_errors_map_to_protocol_kinds() {
        let unknown: JsonError = Error::MalformedHandle("x".into()).into();
        assert_eq!(unknown.kind(), ErrorKind::UnknownHandle);
        let invalid: JsonError = Error::InvalidRequest {
            reason: "argv is empty".into(),
        }
        .into();
        assert_eq!(invalid.kind(), ErrorKind::InvalidRequest);
        let denied: JsonError = Error::PolicyDenied {
            rule: DenyRule::Concurrency,
            reason: "no".into(),
        }
        .into();
        assert_eq!(denied.kind(), ErrorKind::PolicyDenied);
        assert_eq!(denied.rule(), Some(DenyRule::Concurrency));
        let unknown_op = JsonError::UnknownOp {
            op: "frob".into(),
            known: &["spawn", "poll"],
        };
        assert_eq!(unknown_op.rule(), None);
        let gone: JsonError = Error::no_reply("poll").into();
        assert_eq!(gone.kind(), ErrorKind::Internal);
    }

    #[test]
    fn quoting_escapes_and_cuts() {
        assert_eq!(quoted("a\0b"), "\"a\\0b\"");
        let long = "é".repeat(100);
        let cut = quoted(&long);
        assert!(cut.ends_with("..."));
        assert_eq!(cut.chars().filter(|c| *c == 'é').count(), PREVIEW_CHARS);
    }

    #[test]
    fn unknown_op_lists_the_known_ones() {
        let message = JsonError::UnknownOp {
            op: "frob".into(),
            known: &["spawn", "poll"],
        }
        .to_string();
        assert!(message.contains("\"frob\""), "{message}");
        assert!(message.contains("spawn"), "{message}");
    }
}
