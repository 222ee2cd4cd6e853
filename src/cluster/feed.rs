//! Remote subscriptions, node side: a [`Feed`] task per subscriber on
//! another node, and the plain-data messages that pull its events.
//!
//! A remote subscriber cannot hold a local [`Credit`]: the chunk it holds
//! is a copy on another machine. So a feed is pulled, and the pull is the
//! acknowledgement. The feed subscribes to the process locally (16-chunk
//! window, as every subscriber) and keeps each event it receives, credit
//! and all, until the client's next [`NextArgs`] says how many events it
//! has taken. Only then are those events dropped and their places in the
//! window returned. A client that stops pulling therefore closes its
//! window exactly as a slow local subscriber does: the process actor
//! counts further output as missed, and memory stays bounded by the window
//! (16 chunks, a `Missed` per stream, one `Exit`).
//!
//! Because events stay until acknowledged, a pull whose answer is lost (a
//! cancelled `recv` on the client) loses nothing: the next pull says what
//! the client really has, and the feed sends the rest again.

use std::collections::VecDeque;

use ractor::RpcReplyPort;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use super::error::{RemoteError, RemoteErrorKind};
use super::wire::Wire;
use crate::messages::{Credit, HandleId, OutputEvent, Subscribed};

/// A subscription to a remote handle's live output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeArgs {
    /// The handle on the gateway's node.
    pub id: HandleId,
    /// The subscriber's full node name (`name@host`). When that session
    /// closes, the node ends the feed.
    pub peer: String,
}

/// The answer to a [`SubscribeArgs`]: the feed to pull, and where its
/// chunks start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedStarted {
    /// The feed's id on the gateway's node, for [`NextArgs`].
    pub feed: u64,
    /// Where the live chunks start in each stream.
    pub subscribed: Subscribed,
}

/// A pull of a feed's next events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextArgs {
    /// The feed, from [`FeedStarted`].
    pub feed: u64,
    /// How many events the puller has received so far, in all. The feed
    /// drops (and returns the window places of) every event before this
    /// index, and answers from it on.
    pub received: u64,
}

/// The answer to a [`NextArgs`]: events `first`, `first + 1`, ... of the
/// feed. Never empty unless the feed ended.
#[derive(Debug, Serialize, Deserialize)]
pub struct FeedBatch {
    /// The index of `events[0]` among all events of the feed.
    pub first: u64,
    /// The events, in order; [`OutputEvent::Exit`] is the last of the
    /// feed. Their credits are placeholders: the feed holds the real ones
    /// until the next pull.
    pub events: Vec<OutputEvent>,
}

/// What a gateway asks of a feed.
#[derive(Debug)]
pub(crate) enum FeedRequest {
    /// Answer with the events from `received` on, as soon as there is one.
    Next {
        received: u64,
        port: RpcReplyPort<Wire<FeedBatch>>,
    },
}

/// One remote subscriber's feed: the events of a local subscription, kept
/// until the subscriber acknowledges them.
pub(crate) struct Feed {
    peer: String,
    events: mpsc::UnboundedReceiver<OutputEvent>,
    requests: mpsc::UnboundedReceiver<FeedRequest>,
    closed_peers: Option<broadcast::Receiver<String>>,
    /// Events `base`, `base + 1`, ... not yet acknowledged.
    kept: VecDeque<OutputEvent>,
    base: u64,
    /// A pull waiting for the next event, and what it has received.
    waiting: Option<(u64, RpcReplyPort<Wire<FeedBatch>>)>,
}

/// A copy of `event` to send; the original keeps its credit.
fn copy(event: &OutputEvent) -> OutputEvent {
    match event {
        OutputEvent::Chunk {
            tag,
            handle_id,
            stream,
            offset,
            bytes,
            credit: _,
        } => OutputEvent::Chunk {
            tag: *tag,
            handle_id: *handle_id,
            stream: *stream,
            offset: *offset,
            bytes: bytes.clone(),
            credit: Credit::default(),
        },
        OutputEvent::Missed {
            tag,
            handle_id,
            stream,
            bytes,
        } => OutputEvent::Missed {
            tag: *tag,
            handle_id: *handle_id,
            stream: *stream,
            bytes: *bytes,
        },
        OutputEvent::Exit { tag, snapshot } => OutputEvent::Exit {
            tag: *tag,
            snapshot: snapshot.clone(),
        },
    }
}

impl Feed {
    pub(crate) fn new(
        peer: String,
        events: mpsc::UnboundedReceiver<OutputEvent>,
        requests: mpsc::UnboundedReceiver<FeedRequest>,
        closed_peers: Option<broadcast::Receiver<String>>,
    ) -> Self {
        Feed {
            peer,
            events,
            requests,
            closed_peers,
            kept: VecDeque::new(),
            base: 0,
            waiting: None,
        }
    }

    /// Runs until the gateway drops the feed (an unsubscribe, or the
    /// gateway stopping) or the subscriber's session closes.
    pub(crate) async fn run(mut self) {
        let mut events_open = true;
        loop {
            tokio::select! {
                event = self.events.recv(), if events_open => match event {
                    Some(event) => {
                        self.kept.push_back(event);
                        if let Some((received, port)) = self.waiting.take() {
                            self.answer(received, port);
                        }
                    }
                    // After the exit event the process drops its sender.
                    None => events_open = false,
                },
                request = self.requests.recv() => match request {
                    Some(FeedRequest::Next { received, port }) => {
                        self.answer(received, port);
                    }
                    None => return,
                },
                closed = recv_closed(&mut self.closed_peers) => {
                    if closed == self.peer {
                        return;
                    }
                }
            }
        }
    }

    /// Drops what the puller has received, then answers with the rest, or
    /// waits for the next event if there is none.
    fn answer(&mut self, received: u64, port: RpcReplyPort<Wire<FeedBatch>>) {
        let end = self.base + self.kept.len() as u64;
        if received > end {
            let _ = port.send(Wire::new(Err(RemoteError::new(
                RemoteErrorKind::Protocol,
                format!("a pull says it received {received} events; the feed sent {end}"),
            ))));
            return;
        }
        while self.base < received {
            self.kept.pop_front();
            self.base += 1;
        }
        if self.kept.is_empty() {
            // An older pull still waiting was abandoned by its caller.
            if let Some((_, old)) = self.waiting.replace((received, port)) {
                let _ = old.send(Wire::ok(FeedBatch {
                    first: received,
                    events: Vec::new(),
                }));
            }
            return;
        }
        let batch = FeedBatch {
            first: self.base,
            events: self.kept.iter().map(copy).collect(),
        };
        let _ = port.send(Wire::ok(batch));
    }
}

/// The next closed peer name, or never if the feed has no such channel.
async fn recv_closed(closed: &mut Option<broadcast::Receiver<String>>) -> String {
    loop {
        let Some(rx) = closed.as_mut() else {
            return std::future::pending().await;
        };
        match rx.recv().await {
            Ok(peer) => return peer,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => *closed = None,
        }
    }
}
