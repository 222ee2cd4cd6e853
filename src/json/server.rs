//! The line protocol over one byte stream: read request lines, run each as
//! its own task, write each response whole as one line.
//!
//! # Ordering
//!
//! Requests run concurrently, so responses come in the order requests
//! finish, not the order they were sent: match them by `id`. Requests are
//! not ordered among themselves, except `write` and `close_stdin` to one
//! handle, which are applied in the order they were read. Every line
//! read gets exactly one response line. One writer task owns the output;
//! request tasks append finished lines whole to its outbox, so lines are
//! never interleaved.
//!
//! # Closing
//!
//! When the input ends (or the `stop` future resolves), no more lines are
//! read; spawns already read finish; the processes that the close concerns
//! are killed (every process, for [`serve`]; the connection's own, for a
//! socket connection); requests still running get their answers, which are
//! written and flushed; then the function returns.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::task::JoinSet;

use super::dispatcher::{Dispatcher, kill_all};
use super::error::JsonError;
use super::lines::{Line, LineReader};
use super::outbox::Outbox;
use super::request::{Request, too_long, write_response};
use super::stdin_order::{StdinOrder, Turn};
use crate::messages::{KillRequest, Status};
use crate::registry::Registry;

/// The default cap on a request line: 1 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;

/// The default grace between `SIGTERM` and `SIGKILL` when the server
/// shuts down: 500 ms.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// A response line's buffer (see [`LINE`]) is kept for the next one up to
/// this size; a larger one (a snapshot with a lot of output) is freed.
const KEEP_LINE_CAPACITY: usize = 64 * 1024;

thread_local! {
    /// Where a request task serializes its response line before copying it
    /// into the outbox: one buffer for each worker thread, reused.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How long a closing server waits past the shutdown grace for kills and
/// requests still running before it gives up on them.
const CLOSE_MARGIN: Duration = Duration::from_secs(5);

/// The settings of the line protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Longest request line accepted, in bytes (without its `\n`). A longer
    /// line is skipped without being buffered and answered with an
    /// `invalid_request` error. Default [`DEFAULT_MAX_LINE_BYTES`].
    pub max_line_bytes: usize,
    /// When closing: how long processes get between `SIGTERM` and
    /// `SIGKILL`. Zero sends `SIGKILL` at once. Default
    /// [`DEFAULT_SHUTDOWN_GRACE`].
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

impl ServeOptions {
    /// Sets [`max_line_bytes`](Self::max_line_bytes).
    pub fn max_line_bytes(mut self, bytes: usize) -> Self {
        self.max_line_bytes = bytes;
        self
    }

    /// Sets [`shutdown_grace`](Self::shutdown_grace).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// The kill sent to processes when closing.
    pub(crate) fn close_kill(&self) -> KillRequest {
        if self.shutdown_grace.is_zero() {
            KillRequest::default()
        } else {
            KillRequest::terminate(self.shutdown_grace)
        }
    }

    /// How long closing waits for kills and for requests still running.
    pub(crate) fn close_deadline(&self) -> Duration {
        self.shutdown_grace.saturating_add(CLOSE_MARGIN)
    }
}

/// Serves the protocol on `input`/`output` (for example stdin/stdout)
/// until the input ends or `stop` resolves. Then, in this order: the
/// spawns already read reach the registry; every running process of the
/// registry is killed (`SIGTERM`, then `SIGKILL` after the shutdown grace);
/// the requests still running are answered (a pending `wait` with status
/// `killed`) and `output` is flushed; the registry is stopped, which reaps
/// every process it started.
///
/// An error is returned only when reading the input fails; bad requests
/// are answered, never returned.
///
/// Run it on a task of the runtime (`tokio::spawn`) rather than in
/// `block_on`'s own thread when throughput matters: the loop yields to the
/// requests it has started every 128 lines, which keeps a burst of
/// pipelined requests from piling up unanswered, but a yield in `block_on`
/// returns at once. `procward serve` answered about 1.5 times as many
/// pipelined polls a second that way, for a third less CPU time each.
pub async fn serve<R, W>(
    registry: Registry,
    input: R,
    output: W,
    options: &ServeOptions,
    stop: impl Future<Output = ()>,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let dispatcher = Dispatcher::new(registry.clone());
    let served = serve_lines(dispatcher, input, output, options, stop, async |options| {
        kill_running(&registry, options).await;
    })
    .await;
    stop_registry(&registry).await;
    served
}

/// Kills every running process of `registry`, with the shutdown grace.
pub(crate) async fn kill_running(registry: &Registry, options: &ServeOptions) {
    let running = match registry.list().await {
        Ok(handles) => handles
            .into_iter()
            .filter(|summary| summary.status == Status::Running)
            .map(|summary| summary.handle_id)
            .collect(),
        Err(err) => {
            tracing::warn!(%err, "could not list the running processes");
            Vec::new()
        }
    };
    let killed = kill_all(
        registry,
        running,
        options.close_kill(),
        options.close_deadline(),
    )
    .await;
    tracing::info!(killed, "killed every running process");
}

/// Stops `registry`, which kills and reaps whatever is left.
pub(crate) async fn stop_registry(registry: &Registry) {
    if let Err(err) = registry.shutdown().await {
        tracing::warn!(%err, "the registry did not stop cleanly");
    }
}

/// The loop shared by [`serve`] and socket connections. Once no more
/// lines will be read, the spawns still running finish first (so that
/// `on_close` sees every process they start), then `on_close` runs, then
/// the other requests still running are awaited.
pub(crate) async fn serve_lines<R, W>(
    dispatcher: Dispatcher,
    input: R,
    output: W,
    options: &ServeOptions,
    stop: impl Future<Output = ()>,
    on_close: impl AsyncFnOnce(&ServeOptions),
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let outbox = Arc::new(Outbox::default());
    let writer = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.write_to(output).await }
    });
    let mut spawns = JoinSet::new();
    let mut requests = JoinSet::new();
    let mut stdin_order = StdinOrder::default();
    let mut reader = LineReader::new(BufReader::new(input), options.max_line_bytes);
    let mut stop = std::pin::pin!(stop);
    let read_result = loop {
        let line = tokio::select! {
            biased;
            () = &mut stop => break Ok(()),
            line = reader.next_line() => line,
        };
        let bytes = match line {
            Ok(Some(Line::Complete(bytes))) => bytes,
            Ok(Some(Line::TooLong { length })) => {
                outbox.push(&too_long(length, options.max_line_bytes).response_line());
                continue;
            }
            Ok(None) => break Ok(()),
            Err(err) => break Err(err),
        };
        match Request::parse(bytes) {
            Err(rejected) => {
                outbox.push(&rejected.response_line());
            }
            Ok(request) => {
                let tasks = if request.op == "spawn" {
                    &mut spawns
                } else {
                    &mut requests
                };
                let turn = stdin_order.turn(&request);
                tasks.spawn(answer(dispatcher.clone(), request, turn, outbox.clone()));
            }
        }
        // Forget the requests already answered.
        while spawns.try_join_next().is_some() {}
        while requests.try_join_next().is_some() {}
        // Let the requests run before reading on, now and then (every 128
        // lines, tokio's task budget): buffered lines never make the loop
        // wait, and it would otherwise read through a whole burst of
        // pipelined requests, and hold them all, before answering the
        // first. Waiting requests do not hold it up: this only yields.
        tokio::task::coop::consume_budget().await;
    };
    drop(reader);
    finish(&mut spawns, options.close_deadline()).await;
    on_close(options).await;
    finish(&mut requests, options.close_deadline()).await;
    outbox.close();
    if writer.await.is_err() {
        tracing::error!("the response writer panicked");
    }
    read_result
}

/// Waits for `tasks` to finish, for at most `deadline`; then drops the
/// rest unanswered.
async fn finish(tasks: &mut JoinSet<()>, deadline: Duration) {
    let all_done = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(deadline, all_done).await.is_err() {
        tracing::warn!(
            pending = tasks.len(),
            "requests still running at close are dropped unanswered"
        );
        tasks.shutdown().await;
    }
}

/// Runs one request (after the one before it in its stdin `turn`, if any)
/// and queues its response line. A handler that panics is still answered,
/// with an `internal` error.
async fn answer(
    dispatcher: Dispatcher,
    request: Request,
    mut turn: Option<Turn>,
    outbox: Arc<Outbox>,
) {
    if let Some(turn) = &mut turn {
        turn.wait().await;
    }
    // Boxed: the task's future is moved several times on its way into
    // the runtime and the handler's is the bulk of it.
    let mut handler = Box::pin(dispatcher.answer(&request.op, &request.params));
    let result = match catch_unwind(handler.as_mut()).await {
        Ok(result) => result,
        Err(()) => {
            tracing::error!(op = request.op, "a request handler panicked");
            Err(JsonError::Internal("the request handler failed".to_owned()))
        }
    };
    LINE.with_borrow_mut(|line| {
        line.clear();
        write_response(line, &request.id, result.as_ref());
        outbox.push(line);
        if line.capacity() > KEEP_LINE_CAPACITY {
            *line = Vec::new();
        }
    });
    // Only now may the next stdin request to the same handle start.
    drop(turn);
}

/// Runs `future` to its end on this task, catching a panic in it as
/// `Err(())`. (Running it on a task of its own would catch the panic too,
/// at the cost of a spawn and a wake-up per request.)
async fn catch_unwind<F: Future>(mut future: Pin<&mut F>) -> Result<F::Output, ()> {
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            // Not polled again: the future is dropped with this one.
            Err(_) => Poll::Ready(Err(())),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_in_a_handler_is_caught_and_the_task_goes_on() {
        let mut polled = false;
        let handler = std::pin::pin!(std::future::poll_fn(|cx| {
            if !polled {
                polled = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            panic!("a handler bug");
        }));
        let caught: Result<(), ()> = catch_unwind(handler).await;
        assert_eq!(caught, Err(()));
        let fine = std::pin::pin!(async { 7 });
        assert_eq!(catch_unwind(fine).await, Ok(7));
    }
}
