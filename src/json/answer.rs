//! [`Answer`]: an op's result before it is written.
//!
//! The ops answer with the registry's own data where they can (a snapshot,
//! a listing), and the response line is serialized from it directly
//! through the borrowing views of [`render`](super::render). Only a
//! library caller of [`Dispatcher::dispatch`](super::Dispatcher::dispatch)
//! gets it as a `serde_json::Value`.

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::encoding::OutputLimit;
use super::error::JsonError;
use super::render::{SnapshotView, Spawned, Summary};
use crate::messages::{HandleSummary, Snapshot, Status, WaitOutcome};

/// The result object of one request.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A result built as a JSON value (the small ones).
    Value(Value),
    /// `spawn`: the running snapshot, written with the original five keys.
    Spawned(Snapshot),
    /// `poll`, `pause`, `resume`: the full snapshot, its output within the
    /// limit.
    Snapshot(Snapshot, OutputLimit),
    /// `wait` (and `spawn` with `wait`): the snapshot, `timed_out` and
    /// `wait_timed_out`, its output within the limit.
    Waited(WaitOutcome, OutputLimit),
    /// `list`: `{"handles": [...]}`.
    Listed(Vec<HandleSummary>),
}

impl Answer {
    /// The answer as a JSON value, with the keys in the order they are
    /// written.
    pub(crate) fn into_value(self) -> Result<Value, JsonError> {
        match self {
            Answer::Value(value) => Ok(value),
            // Only maps with string keys and plain values: this does not fail.
            other => serde_json::to_value(&other).map_err(|err| {
                JsonError::Internal(format!("the result could not be encoded: {err}"))
            }),
        }
    }
}

impl Answer {
    /// About how many bytes of output, data and strings the answer
    /// carries: enough to tell a line that takes long to write, or much
    /// memory to hold, from a small one before writing it.
    pub(crate) fn weight(&self) -> usize {
        // The output shown, and the strings the spawn set (a command can
        // be as long as a request line).
        let shown = |snapshot: &Snapshot, limit: &OutputLimit| {
            let stdout = snapshot.stdout.bytes.len().min(limit.max_bytes);
            let stderr = snapshot.stderr.bytes.len().min(limit.max_bytes);
            let owner = snapshot.owner.as_deref().map_or(0, str::len);
            stdout
                .saturating_add(stderr)
                .saturating_add(snapshot.command.len())
                .saturating_add(owner)
        };
        /// About what one entry of a list (of handles, say) takes.
        const ENTRY: usize = 256;
        match self {
            // `read`'s data, for one: the strings at the top, and lists.
            Answer::Value(Value::Object(map)) => map
                .values()
                .map(|value| match value {
                    Value::String(text) => text.len(),
                    Value::Array(items) => items.len().saturating_mul(ENTRY),
                    _ => 0,
                })
                .sum(),
            Answer::Listed(handles) => handles.len().saturating_mul(ENTRY),
            Answer::Value(_) | Answer::Spawned(_) => 0,
            Answer::Snapshot(snapshot, limit) => shown(snapshot, limit),
            Answer::Waited(outcome, limit) => shown(&outcome.snapshot, limit),
        }
    }
}

impl From<Value> for Answer {
    fn from(value: Value) -> Self {
        Answer::Value(value)
    }
}

impl Serialize for Answer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Answer::Value(value) => value.serialize(serializer),
            Answer::Spawned(snapshot) => Spawned::new(snapshot).serialize(serializer),
            Answer::Snapshot(snapshot, limit) => {
                SnapshotView::new(snapshot, *limit).serialize(serializer)
            }
            Answer::Waited(outcome, limit) => Waited::new(outcome, *limit).serialize(serializer),
            Answer::Listed(handles) => Listing { handles }.serialize(serializer),
        }
    }
}

/// A wait's answer: the snapshot, then `timed_out` (true when the wait's
/// own timeout passed *or* the spawn timeout ended the process, as the
/// original registry said), then `wait_timed_out` (only the former), for
/// callers that must tell the two apart.
#[derive(Serialize)]
struct Waited<'a> {
    #[serde(flatten)]
    view: SnapshotView<'a>,
    wait_timed_out: bool,
}

impl<'a> Waited<'a> {
    fn new(outcome: &'a WaitOutcome, limit: OutputLimit) -> Self {
        let timed_out = outcome.timed_out || outcome.snapshot.status == Status::TimedOut;
        Waited {
            view: SnapshotView::waited(&outcome.snapshot, timed_out, limit),
            wait_timed_out: outcome.timed_out,
        }
    }
}

#[derive(Serialize)]
struct Listing<'a> {
    #[serde(serialize_with = "summaries")]
    handles: &'a [HandleSummary],
}

fn summaries<S: Serializer>(handles: &&[HandleSummary], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(handles.iter().map(Summary::new))
}
