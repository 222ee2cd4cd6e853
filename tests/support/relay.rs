//! [`Relay`]: an actor subscriber for the subscription tests, which
//! passes every event it gets to a channel the test reads, and
//! [`bytes_until_exit`] to read that channel.

use std::time::Duration;

use procward::{OutputEvent, Snapshot};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;

/// An actor that passes what it gets to a channel.
pub(crate) struct Relay;

impl Actor for Relay {
    type Msg = OutputEvent;
    type State = mpsc::UnboundedSender<OutputEvent>;
    type Arguments = mpsc::UnboundedSender<OutputEvent>;

    async fn pre_start(
        &self,
        _myself: ActorRef<OutputEvent>,
        tx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle(
        &self,
        _myself: ActorRef<OutputEvent>,
        event: OutputEvent,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let _ = tx.send(event);
        Ok(())
    }
}

/// The chunks' bytes from `rx` until the exit event, and its snapshot;
/// panics on anything else, or if nothing comes within 30 s.
pub(crate) async fn bytes_until_exit(
    rx: &mut mpsc::UnboundedReceiver<OutputEvent>,
) -> (Vec<u8>, Snapshot) {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(OutputEvent::Chunk { bytes, .. })) => out.extend_from_slice(&bytes),
            Ok(Some(OutputEvent::Exit { snapshot, .. })) => return (out, snapshot),
            other => panic!("unexpected {other:?}"),
        }
    }
}
