//! Output and stdin types: which stream, incremental reads, subscriptions
//! and their events, and how stdin is given to a child.

use bytes::Bytes;
use ractor::DerivedActorRef;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::{HandleId, Snapshot};

/// The default capture cap per stream: 16 MiB.
pub const DEFAULT_OUTPUT_CAP: usize = 16 * 1024 * 1024;

/// Chunks one subscriber may hold (delivered but not yet dropped) before
/// further chunks are counted as missed instead of sent: with 64 KiB reads,
/// at most 1 MiB per subscriber. Remote subscriptions keep the same window.
pub(crate) const SUBSCRIBER_WINDOW: usize = 16;

/// One of a child's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    /// The child's standard output.
    Stdout,
    /// The child's standard error.
    Stderr,
}

impl OutputStream {
    /// `"stdout"` or `"stderr"`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        }
    }
}

/// How a child's stdin is set up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stdin {
    /// `/dev/null` (the default).
    #[default]
    Null,
    /// These bytes, then end of file.
    Bytes(Bytes),
    /// A pipe kept open for [`RegistryMsg::Write`](super::RegistryMsg::Write)
    /// until [`RegistryMsg::CloseStdin`](super::RegistryMsg::CloseStdin) or
    /// the end of the process.
    Pipe,
}

/// A request for one stream's bytes from an offset on.
///
/// Offsets count every byte the child wrote to the stream, kept or dropped,
/// so `next_offset` of one read is the `offset` of the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReadRequest {
    /// Which stream.
    pub stream: OutputStream,
    /// Where to start, as a count of bytes written before it.
    pub offset: u64,
    /// The most bytes to return; everything available when `None`.
    pub max_bytes: Option<usize>,
}

impl ReadRequest {
    /// All of `stream` from its first byte: pass [`offset`](Self::offset)
    /// and [`max_bytes`](Self::max_bytes) to narrow it.
    pub fn new(stream: OutputStream) -> Self {
        ReadRequest {
            stream,
            offset: 0,
            max_bytes: None,
        }
    }

    /// Start at this stream offset (a `next_offset` of an earlier read).
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }

    /// Return at most this many bytes.
    pub fn max_bytes(mut self, max: usize) -> Self {
        self.max_bytes = Some(max);
        self
    }
}

/// The answer to a [`ReadRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReadChunk {
    /// Which stream.
    pub stream: OutputStream,
    /// The stream offset of `bytes[0]`. Larger than the requested offset
    /// exactly when `dropped` is set.
    pub offset: u64,
    /// The bytes, contiguous in the stream: a read never spans the dropped
    /// middle of a truncated stream.
    pub bytes: Bytes,
    /// Where the next read should start (`offset + bytes.len()`).
    pub next_offset: u64,
    /// Bytes between the requested offset and `offset` were dropped by the
    /// capture cap and are gone.
    pub dropped: bool,
    /// Bytes written to the stream so far.
    pub total_bytes: u64,
    /// The handle is terminal: nothing more will be written.
    pub complete: bool,
}

/// Where the kept bytes of a stream sit among all bytes written: the head
/// `[0, head_end)` and the tail `[tail_start, total)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kept {
    pub(crate) head_end: u64,
    pub(crate) tail_start: u64,
    pub(crate) total: u64,
}

impl Kept {
    /// The stream range `[start, end)` a read from `offset` returns, and
    /// whether it skipped dropped bytes; `None` when `offset` is past the
    /// end of what was written.
    pub(crate) fn plan(self, offset: u64, max_bytes: Option<usize>) -> Option<(u64, u64, bool)> {
        if offset > self.total {
            return None;
        }
        let (start, dropped) = if offset < self.head_end || offset >= self.tail_start {
            (offset, false)
        } else {
            (self.tail_start, true)
        };
        let segment_end = if start < self.head_end && self.tail_start > self.head_end {
            self.head_end
        } else {
            self.total
        };
        let end = match max_bytes {
            Some(max) => segment_end.min(start.saturating_add(max as u64)),
            None => segment_end,
        };
        Some((start, end, dropped))
    }

    /// Index into the joined head + tail bytes of stream offset `offset`,
    /// which must be kept.
    pub(crate) fn index(self, offset: u64) -> usize {
        if offset < self.head_end {
            offset as usize
        } else {
            (offset - self.tail_start + self.head_end) as usize
        }
    }
}

/// A live event of one process, for a subscriber.
///
/// Every event carries the `tag` its subscription was made with
/// ([`SubscribeRequest::tag`]), so one subscriber can tell its
/// subscriptions apart without a table of handle ids.
// `Exit` is larger than the rest; events are moved once into a channel or
// a mailbox (which boxes them anyway), so boxing it would only add an
// allocation per exit.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputEvent {
    /// Bytes the child wrote, in order per stream.
    Chunk {
        /// The subscription's tag.
        tag: u64,
        /// The handle.
        handle_id: HandleId,
        /// Which stream.
        stream: OutputStream,
        /// The stream offset of `bytes[0]`.
        offset: u64,
        /// The bytes.
        bytes: Bytes,
        /// Holds one of the subscriber's places in flight until this event
        /// is dropped. Not serialized.
        #[serde(skip)]
        credit: Credit,
    },
    /// The subscriber fell behind (or asked to replay bytes the capture no
    /// longer holds) and missed `bytes` bytes of `stream`. Sent before the
    /// next chunk of that stream, or before `Exit`.
    Missed {
        /// The subscription's tag.
        tag: u64,
        /// The handle.
        handle_id: HandleId,
        /// Which stream.
        stream: OutputStream,
        /// How many bytes were not delivered.
        bytes: u64,
    },
    /// The handle is terminal. Always the last event, sent exactly once.
    Exit {
        /// The subscription's tag.
        tag: u64,
        /// The terminal snapshot.
        snapshot: Snapshot,
    },
}

impl OutputEvent {
    /// The tag of the subscription this event belongs to.
    pub fn tag(&self) -> u64 {
        match self {
            OutputEvent::Chunk { tag, .. }
            | OutputEvent::Missed { tag, .. }
            | OutputEvent::Exit { tag, .. } => *tag,
        }
    }

    /// The handle this event is about.
    pub fn handle_id(&self) -> HandleId {
        match self {
            OutputEvent::Chunk { handle_id, .. } | OutputEvent::Missed { handle_id, .. } => {
                *handle_id
            }
            OutputEvent::Exit { snapshot, .. } => snapshot.handle_id,
        }
    }
}

// With ractor's `cluster` feature there is no blanket `Message` impl.
#[cfg(feature = "cluster")]
impl ractor::Message for OutputEvent {}

/// A place in a subscriber's window of chunks in flight. It returns to the
/// window when the [`OutputEvent::Chunk`] holding it is dropped: a
/// subscriber that keeps events keeps its window closed and misses chunks.
#[derive(Debug, Default)]
pub struct Credit {
    /// Held only for its drop, which reopens the place.
    _permit: Option<OwnedSemaphorePermit>,
}

impl Credit {
    pub(crate) fn new(permit: OwnedSemaphorePermit) -> Self {
        Credit {
            _permit: Some(permit),
        }
    }
}

/// Where a subscription's events go. Not serializable: it is a channel or
/// a local actor reference (across machines, the cluster client makes its
/// own subscriptions).
///
/// Two subscribers are equal when they deliver to the same channel or the
/// same actor.
#[derive(Debug, Clone)]
pub enum Subscriber {
    /// A channel, for callers that are not actors.
    Channel(mpsc::UnboundedSender<OutputEvent>),
    /// An actor, through `actor_ref.get_derived()`. ractor's `get_derived`
    /// needs both `From<OutputEvent> for YourMsg` and
    /// `TryFrom<YourMsg> for OutputEvent`, and the `TryFrom` must give the
    /// event back (`YourMsg::Output(event) => Ok(event)`): when a send fails
    /// because the actor stopped, ractor converts the message back and
    /// *panics* if that conversion fails. procward checks that the actor is
    /// still running before each send, which narrows that window to an
    /// actor stopping during the send; a correct `TryFrom` closes it.
    Actor(DerivedActorRef<OutputEvent>),
}

impl Subscriber {
    /// Sends one event; `false` when the subscriber is gone (its channel
    /// closed, its actor not running). Never sends to an actor that is not
    /// running: ractor's derived reference panics on a failed send whose
    /// message does not convert back.
    pub(crate) fn send(&self, event: OutputEvent) -> bool {
        match self {
            Subscriber::Channel(tx) => tx.send(event).is_ok(),
            Subscriber::Actor(actor) => {
                matches!(
                    actor.get_status(),
                    ractor::ActorStatus::Starting
                        | ractor::ActorStatus::Running
                        | ractor::ActorStatus::Upgrading
                ) && actor.send_message(event).is_ok()
            }
        }
    }
}

impl PartialEq for Subscriber {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Subscriber::Channel(a), Subscriber::Channel(b)) => a.same_channel(b),
            (Subscriber::Actor(a), Subscriber::Actor(b)) => a.get_id() == b.get_id(),
            _ => false,
        }
    }
}

impl Eq for Subscriber {}

/// Stream offsets: one per stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Offsets {
    /// The stdout offset.
    pub stdout: u64,
    /// The stderr offset.
    pub stderr: u64,
}

impl Offsets {
    /// Both streams from their first byte.
    pub const START: Offsets = Offsets {
        stdout: 0,
        stderr: 0,
    };

    pub(crate) fn get(&self, stream: OutputStream) -> u64 {
        match stream {
            OutputStream::Stdout => self.stdout,
            OutputStream::Stderr => self.stderr,
        }
    }
}

/// A subscription to ask for: where its events go, the tag they carry, and
/// where it starts.
///
/// ```
/// # fn demo(tx: tokio::sync::mpsc::UnboundedSender<procward::OutputEvent>) {
/// use procward::{Offsets, SubscribeRequest, Subscriber};
///
/// // Job 42's output from the first byte the capture still holds, then live.
/// let request = SubscribeRequest::new(Subscriber::Channel(tx))
///     .tag(42)
///     .replay_from(Offsets::START);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRequest {
    /// Where the events go.
    pub subscriber: Subscriber,
    /// A value of the caller's choosing that every event of this
    /// subscription carries ([`OutputEvent::tag`]). Default 0.
    pub tag: u64,
    /// `None` (the default): live chunks only, from the moment the process
    /// actor takes the subscription. `Some(offsets)`: first what the
    /// capture holds from `offsets` on (a part the capture cap dropped is
    /// reported as [`OutputEvent::Missed`]), then live chunks, with no gap
    /// and no overlap. Replayed chunks count against the window like live
    /// ones. An offset past what the stream has seen is
    /// [`Error::OffsetOutOfRange`](crate::Error::OffsetOutOfRange).
    pub from: Option<Offsets>,
}

impl SubscribeRequest {
    /// Live events to `subscriber`, tag 0.
    pub fn new(subscriber: Subscriber) -> Self {
        SubscribeRequest {
            subscriber,
            tag: 0,
            from: None,
        }
    }

    /// Sets [`tag`](Self::tag).
    pub fn tag(mut self, tag: u64) -> Self {
        self.tag = tag;
        self
    }

    /// Sets [`from`](Self::from): replay from `offsets`, then live.
    pub fn replay_from(mut self, offsets: Offsets) -> Self {
        self.from = Some(offsets);
        self
    }
}

impl From<Subscriber> for SubscribeRequest {
    fn from(subscriber: Subscriber) -> Self {
        SubscribeRequest::new(subscriber)
    }
}

/// The answer to a subscription: where its first chunk of each stream
/// starts. Bytes before these offsets are not sent (read them with a read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Subscribed {
    /// The stdout offset of the first chunk the subscriber will get.
    pub stdout_offset: u64,
    /// The same for stderr.
    pub stderr_offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHOLE: Kept = Kept {
        head_end: 5,
        tail_start: 5,
        total: 12,
    };
    const GAPPED: Kept = Kept {
        head_end: 5,
        tail_start: 20,
        total: 25,
    };

    #[test]
    fn reads_across_head_and_tail_when_nothing_dropped() {
        assert_eq!(WHOLE.plan(0, None), Some((0, 12, false)));
        assert_eq!(WHOLE.plan(3, Some(4)), Some((3, 7, false)));
        assert_eq!(WHOLE.plan(12, None), Some((12, 12, false)));
        assert_eq!(WHOLE.plan(13, None), None);
    }

    #[test]
    fn never_spans_the_dropped_middle() {
        assert_eq!(GAPPED.plan(0, None), Some((0, 5, false)));
        assert_eq!(GAPPED.plan(5, None), Some((20, 25, true)));
        assert_eq!(GAPPED.plan(9, Some(2)), Some((20, 22, true)));
        assert_eq!(GAPPED.plan(21, None), Some((21, 25, false)));
    }

    #[test]
    fn maps_offsets_to_joined_indexes() {
        assert_eq!(GAPPED.index(4), 4);
        assert_eq!(GAPPED.index(20), 5);
        assert_eq!(GAPPED.index(24), 9);
        assert_eq!(WHOLE.index(7), 7);
    }

    #[test]
    fn zero_max_reads_nothing() {
        assert_eq!(WHOLE.plan(2, Some(0)), Some((2, 2, false)));
    }
}
