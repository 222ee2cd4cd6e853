//! [`Request`] and [`Answer`]: the registry's operations as plain data, for
//! the layers that carry them somewhere (the cluster gateway, the JSON
//! protocol) and run them with one executor,
//! [`Registry::execute`](crate::Registry::execute).

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{
    HandleCounts, HandleId, HandleSummary, KillRequest, ListFilter, ReadChunk, ReadRequest,
    Snapshot, SpawnRequest, WaitOutcome,
};

/// One operation on a registry, as plain serializable data: what a remote
/// node or a protocol front end asks a [`Registry`](crate::Registry) to do.
/// Run it with [`Registry::execute`](crate::Registry::execute), which
/// answers the matching [`Answer`] variant (named on each request below).
///
/// Each variant is the [`Registry`](crate::Registry) method of the same
/// name, with the same behaviour; see there. Requests that hold something
/// local to this OS process are not here: `subscribe` (a channel or an
/// actor) and `watch` (a shared cell).
// Built, moved once into the executor and consumed; boxing `Spawn` would
// only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Request {
    /// Starts a process ([`Registry::spawn`](crate::Registry::spawn)).
    /// Answers [`Answer::Snapshot`]. Subscribers in the request are not
    /// carried when it is serialized.
    Spawn(SpawnRequest),
    /// A snapshot now. Answers [`Answer::Snapshot`].
    Poll {
        /// The handle.
        id: HandleId,
    },
    /// Waits until terminal or until `timeout`. Answers [`Answer::Waited`].
    Wait {
        /// The handle.
        id: HandleId,
        /// Answer with a running snapshot (`timed_out`) if this passes
        /// first.
        timeout: Option<Duration>,
    },
    /// Kills the tree. Answers [`Answer::Snapshot`], terminal.
    Kill {
        /// The handle.
        id: HandleId,
        /// Signal and grace.
        request: KillRequest,
    },
    /// Forgets the handle, killing the tree first. Answers
    /// [`Answer::Released`].
    Release {
        /// The handle.
        id: HandleId,
    },
    /// Stops the tree (SIGSTOP). Answers [`Answer::Snapshot`].
    Pause {
        /// The handle.
        id: HandleId,
    },
    /// Continues a paused tree (SIGCONT). Answers [`Answer::Snapshot`].
    Resume {
        /// The handle.
        id: HandleId,
    },
    /// Reads one stream from an offset on. Answers [`Answer::Read`].
    Read {
        /// The handle.
        id: HandleId,
        /// Stream, offset and size.
        request: ReadRequest,
    },
    /// Writes to a piped stdin. Answers [`Answer::Done`].
    Write {
        /// The handle.
        id: HandleId,
        /// What to write.
        bytes: Bytes,
    },
    /// Closes a piped stdin after the writes before. Answers
    /// [`Answer::Done`].
    CloseStdin {
        /// The handle.
        id: HandleId,
    },
    /// The handles passing the filter, oldest first. Answers
    /// [`Answer::Listed`].
    List(ListFilter),
    /// How many handles, by kind. Answers [`Answer::Counts`].
    Counts,
    /// Kills every running tree of an owner; with `close`, also denies its
    /// later spawns until [`ReopenOwner`](Self::ReopenOwner)
    /// ([`Registry::close_owner`](crate::Registry::close_owner)). Answers
    /// [`Answer::Killed`].
    KillOwner {
        /// The owner key the spawns carried.
        owner: String,
        /// Signal and grace.
        request: KillRequest,
        /// Close the owner too.
        close: bool,
    },
    /// Lets a closed owner spawn again. Answers [`Answer::Reopened`].
    ReopenOwner {
        /// The owner key.
        owner: String,
    },
    /// Releases every handle of an owner, killing its running trees
    /// first. Answers [`Answer::ReleasedOwner`].
    ReleaseOwner {
        /// The owner key.
        owner: String,
    },
}

impl Request {
    /// The handle the request is about; `None` for a spawn and for the
    /// requests about many handles (`list`, `counts`, the owner ones).
    pub fn handle_id(&self) -> Option<HandleId> {
        match self {
            Request::Poll { id }
            | Request::Wait { id, .. }
            | Request::Kill { id, .. }
            | Request::Release { id }
            | Request::Pause { id }
            | Request::Resume { id }
            | Request::Read { id, .. }
            | Request::Write { id, .. }
            | Request::CloseStdin { id } => Some(*id),
            Request::Spawn(_)
            | Request::List(_)
            | Request::Counts
            | Request::KillOwner { .. }
            | Request::ReopenOwner { .. }
            | Request::ReleaseOwner { .. } => None,
        }
    }

    /// The operation's name (`spawn`, `poll`, `kill_owner`, ...), for
    /// messages and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Spawn(_) => "spawn",
            Request::Poll { .. } => "poll",
            Request::Wait { .. } => "wait",
            Request::Kill { .. } => "kill",
            Request::Release { .. } => "release",
            Request::Pause { .. } => "pause",
            Request::Resume { .. } => "resume",
            Request::Read { .. } => "read",
            Request::Write { .. } => "write",
            Request::CloseStdin { .. } => "close_stdin",
            Request::List(_) => "list",
            Request::Counts => "counts",
            Request::KillOwner { close: false, .. } => "kill_owner",
            Request::KillOwner { close: true, .. } => "close_owner",
            Request::ReopenOwner { .. } => "reopen_owner",
            Request::ReleaseOwner { .. } => "release_owner",
        }
    }
}

/// What [`Registry::execute`](crate::Registry::execute) answers to a
/// [`Request`]: one variant per kind of result. Each request's docs name
/// the variant it gets; the `into_*` methods unpack one and say which came
/// instead if another did (an answer from a peer, which need not be a
/// procward of this version, is not trusted to match).
// Moved once per request and never stored; boxing the snapshot would only
// add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Answer {
    /// To `Spawn`, `Poll`, `Kill`, `Pause` and `Resume`.
    Snapshot(Snapshot),
    /// To `Wait`.
    Waited(WaitOutcome),
    /// To `Release`: whether the handle was known.
    Released(bool),
    /// To `Read`.
    Read(ReadChunk),
    /// To `Write` and `CloseStdin`.
    Done,
    /// To `List`.
    Listed(Vec<HandleSummary>),
    /// To `Counts`.
    Counts(HandleCounts),
    /// To `KillOwner`: the terminal snapshots.
    Killed(Vec<Snapshot>),
    /// To `ReopenOwner`: whether the owner was closed.
    Reopened(bool),
    /// To `ReleaseOwner`: how many handles were released.
    ReleasedOwner(usize),
}

/// An [`Answer`] of another variant than the request gets: only a peer
/// that does not speak this version's protocol sends one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} in answer, got {got}")]
pub struct UnexpectedAnswer {
    /// The variant the request gets.
    pub expected: &'static str,
    /// The variant that came.
    pub got: &'static str,
}

/// Generates the `into_*` unpackers, one per variant that carries a value.
macro_rules! unpack {
    ($($(#[$doc:meta])* $fn:ident => $variant:ident($ty:ty);)*) => {
        impl Answer {
            $(
                $(#[$doc])*
                pub fn $fn(self) -> Result<$ty, UnexpectedAnswer> {
                    match self {
                        Answer::$variant(value) => Ok(value),
                        other => Err(UnexpectedAnswer {
                            expected: stringify!($variant),
                            got: other.name(),
                        }),
                    }
                }
            )*
        }
    };
}

unpack! {
    /// The snapshot of [`Answer::Snapshot`].
    into_snapshot => Snapshot(Snapshot);
    /// The outcome of [`Answer::Waited`].
    into_waited => Waited(WaitOutcome);
    /// Whether [`Answer::Released`] knew the handle.
    into_released => Released(bool);
    /// The chunk of [`Answer::Read`].
    into_read => Read(ReadChunk);
    /// The summaries of [`Answer::Listed`].
    into_listed => Listed(Vec<HandleSummary>);
    /// The counts of [`Answer::Counts`].
    into_counts => Counts(HandleCounts);
    /// The snapshots of [`Answer::Killed`].
    into_killed => Killed(Vec<Snapshot>);
    /// Whether [`Answer::Reopened`] found the owner closed.
    into_reopened => Reopened(bool);
    /// The count of [`Answer::ReleasedOwner`].
    into_released_owner => ReleasedOwner(usize);
}

impl Answer {
    /// Nothing, from [`Answer::Done`].
    pub fn into_done(self) -> Result<(), UnexpectedAnswer> {
        match self {
            Answer::Done => Ok(()),
            other => Err(UnexpectedAnswer {
                expected: "Done",
                got: other.name(),
            }),
        }
    }

    /// The variant's name, for [`UnexpectedAnswer`].
    fn name(&self) -> &'static str {
        match self {
            Answer::Snapshot(_) => "Snapshot",
            Answer::Waited(_) => "Waited",
            Answer::Released(_) => "Released",
            Answer::Read(_) => "Read",
            Answer::Done => "Done",
            Answer::Listed(_) => "Listed",
            Answer::Counts(_) => "Counts",
            Answer::Killed(_) => "Killed",
            Answer::Reopened(_) => "Reopened",
            Answer::ReleasedOwner(_) => "ReleasedOwner",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_of_another_kind_says_which_came() {
        let err = Answer::Released(true).into_snapshot().unwrap_err();
        assert_eq!(
            err,
            UnexpectedAnswer {
                expected: "Snapshot",
                got: "Released"
            }
        );
        assert_eq!(Answer::Done.into_done(), Ok(()));
        assert_eq!(Answer::ReleasedOwner(3).into_released_owner(), Ok(3));
        assert!(Answer::Done.into_counts().is_err());
    }
}
