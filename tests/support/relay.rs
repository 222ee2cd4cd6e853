//! [`Relay`]: an actor subscriber for the subscription tests, which
//! passes every event it gets to a channel the test reads.
//!
//! Include it with `#[path = "support/relay.rs"] mod relay;`.

use procward::OutputEvent;
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
