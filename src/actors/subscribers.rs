//! A process actor's subscribers: each gets ordered chunks through a
//! bounded window, learns how many bytes it missed when it falls behind,
//! and gets exactly one exit event.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::messages::{
    Credit, HandleId, OutputEvent, OutputStream, Snapshot, Subscribed, Subscriber,
};

/// Chunks one subscriber may hold (delivered but not yet dropped) before
/// further chunks are counted as missed instead of sent: with chunks of at
/// most 256 KiB (one reader's block), at most 4 MiB per subscriber.
pub(crate) const SUBSCRIBER_WINDOW: usize = 16;

struct Subscription {
    target: Subscriber,
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
    match target {
        Subscriber::Channel(tx) => tx.send(event).is_ok(),
        Subscriber::Actor(actor) => actor.send_message(event).is_ok(),
    }
}

impl Subscribers {
    pub(crate) fn add(&mut self, target: Subscriber) {
        self.list.push(Subscription {
            target,
            window: Arc::new(Semaphore::new(SUBSCRIBER_WINDOW)),
            missed: [0; 2],
        });
    }

    /// Sends a chunk to every subscriber with room in its window, and counts
    /// it as missed for the others. Never waits.
    pub(crate) fn chunk(&mut self, id: HandleId, stream: OutputStream, offset: u64, bytes: &Bytes) {
        self.list.retain_mut(|sub| {
            let Ok(permit) = sub.window.clone().try_acquire_owned() else {
                sub.missed[slot(stream)] += bytes.len() as u64;
                return true;
            };
            let missed = std::mem::take(&mut sub.missed[slot(stream)]);
            if missed > 0
                && !deliver(
                    &sub.target,
                    OutputEvent::Missed {
                        handle_id: id,
                        stream,
                        bytes: missed,
                    },
                )
            {
                return false;
            }
            deliver(
                &sub.target,
                OutputEvent::Chunk {
                    handle_id: id,
                    stream,
                    offset,
                    bytes: bytes.clone(),
                    credit: Credit::new(permit),
                },
            )
        });
    }

    /// Sends what each subscriber missed, then the exit event, and forgets
    /// every subscriber.
    pub(crate) fn exit(&mut self, snapshot: &Snapshot) {
        for sub in self.list.drain(..) {
            for stream in [OutputStream::Stdout, OutputStream::Stderr] {
                let missed = sub.missed[slot(stream)];
                if missed > 0 {
                    deliver(
                        &sub.target,
                        OutputEvent::Missed {
                            handle_id: snapshot.handle_id,
                            stream,
                            bytes: missed,
                        },
                    );
                }
            }
            deliver(&sub.target, OutputEvent::Exit(snapshot.clone()));
        }
    }
}

/// Sends the exit event alone, to a subscriber of a terminal handle, and
/// says where its streams ended.
pub(crate) fn exit_only(target: &Subscriber, snapshot: Snapshot) -> Subscribed {
    let subscribed = Subscribed {
        stdout_offset: snapshot.stdout.total_bytes,
        stderr_offset: snapshot.stderr.total_bytes,
    };
    deliver(target, OutputEvent::Exit(snapshot));
    subscribed
}
