//! [`RemoteSubscription`]: a live feed of a remote process's output and
//! exit event, pulled from its node.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::client::{ClusterClient, NodeLink, RemoteHandle};
use super::error::{RemoteError, RemoteErrorKind};
use super::feed::{FeedBatch, FeedStarted, NextArgs, SubscribeArgs};
use super::gateway::RemoteRegistryMsg;
use super::wire::Wire;
use crate::messages::SUBSCRIBER_WINDOW;
use crate::messages::{Credit, OutputEvent, Subscribed, Subscriber};

/// A live feed of one remote process's output chunks, ending with its exit
/// event: the cross-node form of [`Subscription`](crate::Subscription),
/// with the same events and the same bounds.
///
/// The node keeps at most 16 chunks in flight for this subscriber, as for
/// a local one, and counts output past that as missed
/// ([`OutputEvent::Missed`] before the next chunk of the stream). Each
/// [`recv`](Self::recv) that finds nothing buffered pulls the node's next
/// batch, and that pull acknowledges the batch before: only then does the
/// node return those chunks' places in the window. So a subscriber that
/// stops calling `recv` holds at most one batch here and one window on the
/// node, and the child is never slowed down. Chunk credits on this side
/// are placeholders (holding an event does not keep the window closed;
/// not calling `recv` does).
///
/// [`OutputEvent::Exit`] comes exactly once and last; after it `recv`
/// answers `Ok(None)`. Dropping the subscription ends the node's feed.
#[derive(Debug)]
pub struct RemoteSubscription {
    /// The handle it follows.
    pub handle: RemoteHandle,
    /// Where the live chunks start in each stream; earlier bytes can be
    /// fetched with [`ClusterClient::read`].
    pub subscribed: Subscribed,
    client: ClusterClient,
    link: NodeLink,
    feed: u64,
    /// How many events have arrived from the node, in all.
    received: u64,
    buffered: VecDeque<OutputEvent>,
    /// The exit event has arrived.
    exited: bool,
    /// The node has been told to end the feed.
    ended: bool,
}

impl RemoteSubscription {
    pub(super) fn new(
        client: ClusterClient,
        handle: RemoteHandle,
        link: NodeLink,
        started: FeedStarted,
    ) -> Self {
        RemoteSubscription {
            handle,
            subscribed: started.subscribed,
            client,
            link,
            feed: started.feed,
            received: 0,
            buffered: VecDeque::new(),
            exited: false,
            ended: false,
        }
    }

    /// The next event; `Ok(None)` after the exit event.
    ///
    /// Fails with [`RemoteErrorKind::NodeUnavailable`] as soon as the node
    /// goes away, and with [`RemoteErrorKind::UnknownSubscription`] if the
    /// node no longer has the feed. Cancel safe: a `recv` dropped while
    /// pulling loses no event (the node sends unacknowledged events
    /// again).
    pub async fn recv(&mut self) -> Result<Option<OutputEvent>, RemoteError> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                if matches!(event, OutputEvent::Exit { .. }) {
                    self.end();
                }
                return Ok(Some(event));
            }
            if self.exited {
                return Ok(None);
            }
            let args = NextArgs {
                feed: self.feed,
                received: self.received,
            };
            let batch: FeedBatch = self
                .client
                .call_link(&self.handle.node, &self.link, |tx| {
                    RemoteRegistryMsg::Next(Wire::ok(args), tx)
                })
                .await?;
            self.take(batch)?;
        }
    }

    /// Forwards the events to `subscriber` (a channel, or an actor through
    /// `actor_ref.get_derived()`) from a task, with the credits of a local
    /// subscription: the task pulls the node's next batch only while the
    /// subscriber holds fewer than 16 chunks it has not dropped. So a
    /// subscriber that keeps chunks closes the window as it would locally;
    /// it may hold one window here and the node one more (at most 32
    /// chunks) before output is counted as missed.
    ///
    /// The task ends after the exit event, when the subscriber is gone (a
    /// dropped channel receiver at once, a stopped actor at the next
    /// event), or when the node fails; then it ends with the error, and
    /// the subscriber gets no exit event. Await the handle to learn which.
    pub fn forward(
        self,
        subscriber: Subscriber,
    ) -> tokio::task::JoinHandle<Result<(), RemoteError>> {
        tokio::spawn(self.pump(subscriber))
    }

    async fn pump(mut self, subscriber: Subscriber) -> Result<(), RemoteError> {
        let window = Arc::new(Semaphore::new(SUBSCRIBER_WINDOW));
        loop {
            // A channel whose receiver is gone ends the feed at once (recv
            // is cancel safe); an actor that stopped is noticed at the next
            // event.
            let next = match &subscriber {
                Subscriber::Channel(tx) => tokio::select! {
                    next = self.recv() => next?,
                    () = tx.closed() => return Ok(()),
                },
                Subscriber::Actor(_) => self.recv().await?,
            };
            let Some(mut event) = next else {
                return Ok(());
            };
            if let OutputEvent::Chunk { credit, .. } = &mut event {
                // The semaphore is never closed; its permits come back as
                // the subscriber drops chunks (or drops its mailbox).
                let Ok(permit) = window.clone().acquire_owned().await else {
                    return Ok(());
                };
                *credit = Credit::new(permit);
            }
            let last = matches!(event, OutputEvent::Exit { .. });
            let delivered = subscriber.send(event);
            if !delivered || last {
                return Ok(());
            }
        }
    }

    /// Buffers the events of `batch` that have not arrived before.
    fn take(&mut self, batch: FeedBatch) -> Result<(), RemoteError> {
        if batch.first > self.received {
            return Err(RemoteError::new(
                RemoteErrorKind::Protocol,
                format!(
                    "the node skipped events {} to {} of the feed",
                    self.received, batch.first
                ),
            ));
        }
        let seen = usize::try_from(self.received - batch.first).unwrap_or(usize::MAX);
        for event in batch.events.into_iter().skip(seen) {
            self.exited |= matches!(event, OutputEvent::Exit { .. });
            self.buffered.push_back(event);
            self.received += 1;
        }
        Ok(())
    }

    /// Tells the node to drop the feed (once).
    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            // A node that is gone has dropped the feed already.
            let _ = self
                .link
                .gateway
                .cast(RemoteRegistryMsg::Unsubscribe(Wire::ok(self.feed)));
        }
    }
}

impl Drop for RemoteSubscription {
    fn drop(&mut self) {
        self.end();
    }
}

impl ClusterClient {
    /// Subscribes to a remote process's live output and exit event, with
    /// the same bounds as a local [`Subscription`](crate::Subscription):
    /// see [`RemoteSubscription`].
    pub async fn subscribe(
        &self,
        handle: &RemoteHandle,
    ) -> Result<RemoteSubscription, RemoteError> {
        let link = self.link(&handle.node)?;
        let args = SubscribeArgs {
            id: handle.id,
            peer: self.full_name().to_owned(),
        };
        let started: FeedStarted = self
            .call_link(&handle.node, &link, |tx| {
                RemoteRegistryMsg::Subscribe(Wire::ok(args), tx)
            })
            .await?;
        Ok(RemoteSubscription::new(
            self.clone(),
            handle.clone(),
            link,
            started,
        ))
    }

    /// Subscribes any [`Subscriber`] (for example an actor:
    /// `Subscriber::Actor(my_actor.get_derived())`) to a remote process's
    /// live output and exit event; the events are forwarded by a task. See
    /// [`RemoteSubscription::forward`] for its bounds and how it ends.
    pub async fn subscribe_with(
        &self,
        handle: &RemoteHandle,
        subscriber: Subscriber,
    ) -> Result<Subscribed, RemoteError> {
        let subscription = self.subscribe(handle).await?;
        let subscribed = subscription.subscribed;
        drop(subscription.forward(subscriber));
        Ok(subscribed)
    }
}
