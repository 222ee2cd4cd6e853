//! [`ProcessMsg`]: what one process actor answers, and the events its own
//! tasks send it.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use ractor::RpcReplyPort;
use tokio::sync::OwnedSemaphorePermit;

use super::{
    KillRequest, OutputStream, ReadChunk, ReadRequest, Snapshot, SnapshotWatch, SubscribeRequest,
    Subscribed, WaitOutcome,
};
use crate::error::Result;

/// A message to the actor that owns one OS process. Crate-private: no
/// public API hands out an `ActorRef<ProcessMsg>`, and a message sent
/// past the registry (`Evict`) would bypass its books.
///
/// The registry forwards requests here with the caller's reply port, so the
/// reply types match [`RegistryMsg`](super::RegistryMsg)'s. The
/// [`Registry`](crate::Registry) handle sends `Poll`, `Wait` and `Kill`
/// here itself, for a handle the registry's index says is running (the
/// direct route); nothing else is sent past the registry.
#[derive(Debug)]
pub(crate) enum ProcessMsg {
    /// A snapshot now; never waits.
    Poll(RpcReplyPort<Result<Snapshot>>),
    /// Answers when terminal, or when the timeout passes first.
    Wait(Option<Duration>, RpcReplyPort<Result<WaitOutcome>>),
    /// Kills the process tree; answers once the handle is terminal.
    Kill(KillRequest, RpcReplyPort<Result<Snapshot>>),
    /// Reads captured output from an offset on; never waits.
    Read(ReadRequest, RpcReplyPort<Result<ReadChunk>>),
    /// Appends bytes to the child's stdin; answers once they are written
    /// to the pipe.
    Write(Bytes, RpcReplyPort<Result<()>>),
    /// Closes the child's stdin (end of file), after earlier writes.
    CloseStdin(RpcReplyPort<Result<()>>),
    /// Adds a subscriber to the output (replayed from offsets first if it
    /// asks) and the exit event.
    Subscribe(SubscribeRequest, RpcReplyPort<Result<Subscribed>>),
    /// Answers the handle's [`SnapshotWatch`].
    Watch(RpcReplyPort<Result<SnapshotWatch>>),
    /// Stops the process tree (SIGSTOP to its group); answers the snapshot.
    Pause(RpcReplyPort<Result<Snapshot>>),
    /// Continues a paused process tree (SIGCONT); answers the snapshot.
    Resume(RpcReplyPort<Result<Snapshot>>),
    /// The registry evicted this running handle to stay under its cap: kill
    /// the tree; from now on answer with receipts (no output, `evicted`).
    Evict,
    /// Sent by the actor's own I/O and timer tasks. It cannot be
    /// built outside procward.
    Event(ProcessEvent),
}

// With ractor's `cluster` feature there is no blanket `Message` impl.
#[cfg(feature = "cluster")]
impl ractor::Message for ProcessMsg {}

/// An event from one of a process actor's own tasks.
#[derive(Debug)]
pub(crate) struct ProcessEvent(pub(crate) Event);

#[derive(Debug)]
pub(crate) enum Event {
    /// Bytes read from a pipe. The permit bounds how many chunks a reader
    /// may have in flight; it is released when the actor has stored them.
    Output {
        stream: OutputStream,
        chunk: Bytes,
        _permit: OwnedSemaphorePermit,
    },
    /// The pipe reached end of file (or failed, which ends capture too).
    StreamClosed(OutputStream),
    /// The direct child has exited; it is still unreaped (a zombie).
    LeaderExited,
    /// Watching for the child's exit failed; the actor cannot go on.
    WatchFailed(io::Error),
    /// The drain grace after the child's exit has passed.
    DrainExpired,
    /// The spawn-time timeout has passed.
    TimeoutExpired,
    /// The killed group (or cgroup) has no member left but the unreaped
    /// child; with what the cgroup counted, under cgroup containment.
    SweepDone(Option<super::ResourceUsage>),
    /// The grace of a kill with a gentler signal has passed.
    EscalateKill,
    /// Time to publish new output to the watch.
    Publish,
    /// The timeout of the wait with this number has passed.
    WaitExpired(u64),
}

impl From<Event> for ProcessMsg {
    fn from(event: Event) -> Self {
        ProcessMsg::Event(ProcessEvent(event))
    }
}
