//! A process actor's subscribers: each gets ordered chunks through a
//! bounded window, learns how many bytes it missed when it falls behind,
//! and gets exactly one exit event.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::error::Result;
use crate::messages::{
    Credit, HandleId, Offsets, OutputEvent, OutputStream, ReadChunk, ReadRequest,
    SUBSCRIBER_WINDOW, Snapshot, SubscribeRequest, Subscribed, Subscriber,
};

/// The largest chunk a replay sends: the size of a live read.
const REPLAY_CHUNK: usize = 64 * 1024;

struct Subscription {
    target: Subscriber,
    tag: u64,
    window: Arc<Semaphore>,
    /// Bytes not delivered since the last chunk, per stream.
    missed: [u64; 2],
}

/// Everyone subscribed to one process. A subscriber that is gone (closed
/// channel, stopped actor) is dropped at the next send.
#[derive(Default)]
pub(crate) struct Subscribers {
    list: Vec<Subscription>,
}

fn slot(stream: OutputStream) -> usize {
    match stream {
        OutputStream::Stdout => 0,
        OutputStream::Stderr => 1,
    }
}

fn deliver(target: &Subscriber, event: OutputEvent) -> bool {
    target.send(event)
}

impl Subscription {
    fn new(request: SubscribeRequest) -> Self {
        Subscription {
            target: request.subscriber,
            tag: request.tag,
            window: Arc::new(Semaphore::new(SUBSCRIBER_WINDOW)),
            missed: [0; 2],
        }
    }

    /// Sends one chunk if the window has room, else counts it as missed.
    /// Returns whether the subscriber is still there.
    fn chunk(&mut self, id: HandleId, stream: OutputStream, offset: u64, bytes: &Bytes) -> bool {
        let Ok(permit) = self.window.clone().try_acquire_owned() else {
            self.missed[slot(stream)] += bytes.len() as u64;
            return true;
        };
        if !self.flush_missed(id, stream) {
            return false;
        }
        deliver(
            &self.target,
            OutputEvent::Chunk {
                tag: self.tag,
                handle_id: id,
                stream,
                offset,
                bytes: bytes.clone(),
                credit: Credit::new(permit),
            },
        )
    }

    /// Sends the count of bytes missed on `stream`, if any.
    fn flush_missed(&mut self, id: HandleId, stream: OutputStream) -> bool {
        let missed = std::mem::take(&mut self.missed[slot(stream)]);
        missed == 0
            || deliver(
                &self.target,
                OutputEvent::Missed {
                    tag: self.tag,
                    handle_id: id,
                    stream,
                    bytes: missed,
                },
            )
    }

    /// Sends what the capture holds from `from` on, in chunks through the
    /// window; bytes the cap dropped count as missed. `read` must have been
    /// checked to accept both offsets.
    fn replay(
        &mut self,
        id: HandleId,
        from: Offsets,
        read: impl Fn(&ReadRequest) -> Result<ReadChunk>,
    ) -> Result<()> {
        for stream in [OutputStream::Stdout, OutputStream::Stderr] {
            let mut offset = from.get(stream);
            loop {
                let chunk = read(&ReadRequest {
                    stream,
                    offset,
                    max_bytes: Some(REPLAY_CHUNK),
                })?;
                self.missed[slot(stream)] += chunk.offset - offset;
                if chunk.bytes.is_empty() {
                    break;
                }
                if !self.chunk(id, stream, chunk.offset, &chunk.bytes) {
                    return Ok(());
                }
                offset = chunk.next_offset;
            }
        }
        Ok(())
    }

    /// Sends what was missed, then the exit event.
    fn exit(mut self, snapshot: &Snapshot) {
        for stream in [OutputStream::Stdout, OutputStream::Stderr] {
            if !self.flush_missed(snapshot.handle_id, stream) {
                return;
            }
        }
        deliver(
            &self.target,
            OutputEvent::Exit {
                tag: self.tag,
                snapshot: snapshot.clone(),
            },
        );
    }
}

/// Checks that both offsets can be read from, before anything is sent.
fn check_offsets(from: Offsets, read: &impl Fn(&ReadRequest) -> Result<ReadChunk>) -> Result<()> {
    for stream in [OutputStream::Stdout, OutputStream::Stderr] {
        read(&ReadRequest {
            stream,
            offset: from.get(stream),
            max_bytes: Some(0),
        })?;
    }
    Ok(())
}

impl Subscribers {
    /// Adds a subscriber from the first byte, before any output was read.
    pub(crate) fn add(&mut self, request: SubscribeRequest) {
        self.list.push(Subscription::new(request));
    }

    /// Adds a subscriber to a running process: replays from its `from`
    /// offsets if it asked, then it gets the live chunks that follow
    /// `totals` (what the capture has seen). Answers where its chunks
    /// start.
    pub(crate) fn subscribe(
        &mut self,
        id: HandleId,
        request: SubscribeRequest,
        totals: Offsets,
        read: impl Fn(&ReadRequest) -> Result<ReadChunk>,
    ) -> Result<Subscribed> {
        let from = request.from;
        let mut sub = Subscription::new(request);
        let start = match from {
            Some(from) => {
                check_offsets(from, &read)?;
                sub.replay(id, from, read)?;
                from
            }
            None => totals,
        };
        self.list.push(sub);
        Ok(Subscribed {
            stdout_offset: start.stdout,
            stderr_offset: start.stderr,
        })
    }

    /// Sends a chunk to every subscriber with room in its window, and counts
    /// it as missed for the others. Never waits.
    pub(crate) fn chunk(&mut self, id: HandleId, stream: OutputStream, offset: u64, bytes: &Bytes) {
        self.list
            .retain_mut(|sub| sub.chunk(id, stream, offset, bytes));
    }

    /// Sends what each subscriber missed, then the exit event, and forgets
    /// every subscriber.
    pub(crate) fn exit(&mut self, snapshot: &Snapshot) {
        for sub in self.list.drain(..) {
            sub.exit(snapshot);
        }
    }
}

/// Subscribes to a terminal handle: replays its snapshot's output from the
/// requested offsets, if asked, then sends the exit event. Answers where
/// the chunks start (the end of the streams when no replay was asked for).
pub(crate) fn exit_only(request: SubscribeRequest, snapshot: &Snapshot) -> Result<Subscribed> {
    let read = |r: &ReadRequest| snapshot.read(r);
    let from = request.from;
    let mut sub = Subscription::new(request);
    let start = match from {
        Some(from) => {
            check_offsets(from, &read)?;
            sub.replay(snapshot.handle_id, from, read)?;
            from
        }
        None => Offsets {
            stdout: snapshot.stdout.total_bytes,
            stderr: snapshot.stderr.total_bytes,
        },
    };
    sub.exit(snapshot);
    Ok(Subscribed {
        stdout_offset: start.stdout,
        stderr_offset: start.stderr,
    })
}
