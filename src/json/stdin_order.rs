//! Keeping the stdin requests to one handle in the order they were read.
//!
//! Requests run concurrently, each in its own task, so two requests sent
//! back to back may reach the registry in either order. For most ops that
//! is harmless, but a client that pipelines `write`s and a `close_stdin`
//! to one process without waiting for each answer needs them applied in
//! the order it sent them. Each such request waits for the previous one to
//! the same handle to finish before it starts.

use std::collections::HashMap;

use serde_json::Value;
use tokio::sync::oneshot;

use super::request::Request;
use crate::messages::HandleId;

/// How many handles to remember before forgetting those with no stdin
/// request in flight.
const PRUNE_AT: usize = 256;

/// The last stdin request read for each handle, as a signal that fires
/// (is dropped) when that request has finished.
#[derive(Debug, Default)]
pub(crate) struct StdinOrder {
    last: HashMap<HandleId, oneshot::Receiver<()>>,
}

/// A stdin request's place in its handle's queue.
#[derive(Debug)]
pub(crate) struct Turn {
    previous: Option<oneshot::Receiver<()>>,
    /// Dropped when this request has finished, which lets the next one go.
    _done: oneshot::Sender<()>,
}

impl StdinOrder {
    /// A turn for `request` if it is a `write` or `close_stdin` to a valid
    /// handle id; `None` for anything else. Must be called in the order
    /// the requests were read.
    pub(crate) fn turn(&mut self, request: &Request) -> Option<Turn> {
        if !matches!(request.op.as_str(), "write" | "close_stdin") {
            return None;
        }
        let Some(Value::String(text)) = request.params.get("handle_id") else {
            return None;
        };
        let id: HandleId = text.parse().ok()?;
        if self.last.len() >= PRUNE_AT {
            self.last.retain(|_, done| {
                matches!(done.try_recv(), Err(oneshot::error::TryRecvError::Empty))
            });
        }
        let (done, signal) = oneshot::channel();
        Some(Turn {
            previous: self.last.insert(id, signal),
            _done: done,
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.last.len()
    }
}

impl Turn {
    /// Waits until the previous stdin request to the same handle has
    /// finished (answered, or its task gone).
    pub(crate) async fn wait(&mut self) {
        if let Some(previous) = self.previous.take() {
            let _ = previous.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(op: &str, handle: &str) -> Request {
        Request::parse(
            json!({"op": op, "handle_id": handle})
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_turn_waits_for_the_previous_one_to_the_same_handle() {
        let mut order = StdinOrder::default();
        let mut first = order.turn(&request("write", "psh-1-1")).unwrap();
        let mut second = order.turn(&request("close_stdin", "psh-1-1")).unwrap();
        let mut other = order.turn(&request("write", "psh-2-2")).unwrap();
        first.wait().await; // nothing before it
        other.wait().await; // another handle: not held up
        let waiting = tokio::spawn(async move { second.wait().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap();
    }

    #[test]
    fn other_ops_and_bad_ids_get_no_turn() {
        let mut order = StdinOrder::default();
        assert!(order.turn(&request("poll", "psh-1-1")).is_none());
        assert!(order.turn(&request("write", "nope")).is_none());
        assert_eq!(order.len(), 0);
    }

    #[test]
    fn finished_handles_are_forgotten() {
        let mut order = StdinOrder::default();
        for n in 0..PRUNE_AT {
            drop(order.turn(&request("write", &format!("psh-1-{n}"))));
        }
        assert_eq!(order.len(), PRUNE_AT);
        let _live = order.turn(&request("write", "psh-1-999999")).unwrap();
        assert_eq!(order.len(), 1);
    }
}
