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
//! request tasks send finished lines whole to it, so lines are never
//! interleaved.
//!
//! # Back-pressure
//!
//! Each connection (stdin/stdout, or one socket connection) has its own
//! bounds, so that a slow or silent client only ever holds itself up:
//!
//! - no more request lines are read while more than
//!   [`max_unsent_bytes`](ServeOptions::max_unsent_bytes) of responses wait
//!   to be written, nor while
//!   [`max_in_flight`](ServeOptions::max_in_flight) requests (or
//!   [`max_in_flight_bytes`](ServeOptions::max_in_flight_bytes) of request
//!   lines) are read and not yet answered;
//! - a finished request renders its response only when the unsent bytes
//!   are within their bound, and one carrying more than 4 KiB only two at
//!   a time (more than 64 KiB: on the blocking pool); an answer over 4 KiB
//!   is held only under a share of a per-connection budget (the unsent
//!   bound), and a `poll` or `read` that finds it spent drops its answer
//!   and asks again once there is room;
//! - the output bytes of one stream in one response are capped by
//!   [`max_response_bytes`](ServeOptions::max_response_bytes).
//!
//! docs/protocol.md ("Back-pressure and response size") gives the worst
//! case these add up to.
//!
//! # Closing
//!
//! When the input ends (or the `stop` future resolves), no more lines are
//! read; spawns already read finish; the processes that the close concerns
//! are killed (every process, for [`serve`]; the connection's own, for a
//! socket connection); requests still running get their answers, which are
//! written and flushed; then the function returns. The requests get the
//! close deadline (the shutdown grace plus 5 s) to finish, and their
//! answers as long again to be written: a client that does not read them
//! in that time loses them, and closing never waits on it for longer.

use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::task::{JoinHandle, JoinSet};

use super::answer::Answer;
use super::dispatcher::{DEFAULT_MAX_RESPONSE_BYTES, Dispatcher, kill_all};
use super::error::JsonError;
use super::gate::{Gate, Pass};
use super::lines::{Line, LineReader};
use super::ops;
use super::outbox::{Outbox, SMALL_ANSWER};
use super::params::Params;
use super::request::{Request, too_long, write_response};
use super::stdin_order::{StdinOrder, Turn};
use crate::messages::{KillRequest, Status};
use crate::registry::Registry;

/// The default cap on a request line: 1 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;

/// The default grace between `SIGTERM` and `SIGKILL` when the server
/// shuts down: 500 ms.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// The default bound on a connection's unsent response bytes, past which
/// it is not read: 8 MiB.
pub const DEFAULT_MAX_UNSENT_BYTES: usize = 8 * 1024 * 1024;

/// The default cap on a connection's requests read and not yet answered:
/// 1024.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// The default cap on the request line bytes of a connection's requests
/// read and not yet answered: 16 MiB.
pub const DEFAULT_MAX_IN_FLIGHT_BYTES: usize = 16 * 1024 * 1024;

/// An answer carrying more bytes than this is written on the blocking
/// pool (about 60 µs of a worker's time in a release build), so that a
/// client polling megabytes of output never holds up the other requests
/// on the worker threads.
const LARGE_ANSWER: usize = 64 * 1024;

/// An answer carrying at most this many bytes is held without a share of
/// the connection's answer budget (see [`answer`]): the in-flight cap
/// bounds those.
const HOLD_FREE: usize = SMALL_ANSWER;

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
    /// The most output bytes of one stream in one response. A request's
    /// own `max_bytes` can only lower it; a stream cut by it is flagged
    /// (`stdout_cut`/`stderr_cut` in a snapshot, a short `read`). Default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`].
    pub max_response_bytes: usize,
    /// A connection is not read while more than this many response bytes
    /// wait to be written to it. Default [`DEFAULT_MAX_UNSENT_BYTES`].
    pub max_unsent_bytes: usize,
    /// A connection is not read while this many of its requests are read
    /// and not yet answered (a pending `wait` counts). Default
    /// [`DEFAULT_MAX_IN_FLIGHT`].
    pub max_in_flight: usize,
    /// A connection is not read on while the request lines of its requests
    /// read and not yet answered add up to this many bytes (a longer line
    /// counts as this many). Default [`DEFAULT_MAX_IN_FLIGHT_BYTES`].
    pub max_in_flight_bytes: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_unsent_bytes: DEFAULT_MAX_UNSENT_BYTES,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_in_flight_bytes: DEFAULT_MAX_IN_FLIGHT_BYTES,
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

    /// Sets [`max_response_bytes`](Self::max_response_bytes).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Sets [`max_unsent_bytes`](Self::max_unsent_bytes).
    pub fn max_unsent_bytes(mut self, bytes: usize) -> Self {
        self.max_unsent_bytes = bytes;
        self
    }

    /// Sets [`max_in_flight`](Self::max_in_flight); at least 1 is used.
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests;
        self
    }

    /// Sets [`max_in_flight_bytes`](Self::max_in_flight_bytes); at least 1
    /// is used.
    pub fn max_in_flight_bytes(mut self, bytes: usize) -> Self {
        self.max_in_flight_bytes = bytes;
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
    super::serve_with(Dispatcher::new(registry), input, output, options, stop).await
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
    let dispatcher = dispatcher.max_response_bytes(options.max_response_bytes);
    let (outbox, writer) = Outbox::new(options.max_unsent_bytes);
    let outbox = Arc::new(outbox);
    let writer = AbortOnDrop(tokio::spawn(writer.write_to(output)));
    let admission = Admission::new(options);
    let answers = Budget::new(options.max_unsent_bytes);
    let mut spawns = JoinSet::new();
    let mut requests = JoinSet::new();
    let mut stdin_order = StdinOrder::default();
    let mut reader = LineReader::new(BufReader::new(input), options.max_line_bytes);
    let mut stop = std::pin::pin!(stop);
    let read_result = loop {
        // Back-pressure: read on only once the client has taken enough of
        // its responses and a request slot is free.
        let slot = tokio::select! {
            biased;
            () = &mut stop => break Ok(()),
            slot = admission.slot(&outbox) => slot,
        };
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
        let length = bytes.len();
        match Request::parse(bytes) {
            Err(rejected) => {
                outbox.push(&rejected.response_line());
            }
            Ok(request) => {
                // The line's bytes, once parsed: a stop meanwhile still
                // lets this request run and be answered, then ends reading.
                let (bytes_slot, stopping) = tokio::select! {
                    biased;
                    () = &mut stop => (None, true),
                    bytes_slot = admission.bytes(length) => (Some(bytes_slot), false),
                };
                let tasks = if request.op == "spawn" {
                    &mut spawns
                } else {
                    &mut requests
                };
                let turn = stdin_order.turn(&request);
                // A spawn is sent to the registry here, in the order the
                // lines were read: a `kill_owner` read later reaches the
                // registry later, whatever order the tasks run in.
                let started = (request.op == "spawn")
                    .then(|| ops::spawn::start(&dispatcher, Params(&request.params)));
                let held = Held {
                    _slot: slot,
                    _bytes: bytes_slot,
                };
                tasks.spawn(answer(
                    dispatcher.clone(),
                    request,
                    started,
                    turn,
                    outbox.clone(),
                    answers.clone(),
                    held,
                ));
                if stopping {
                    break Ok(());
                }
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
    // The writer ends once the last outbox is gone and its lines written;
    // a client that does not take them gets the same deadline as the
    // requests, then they are dropped.
    drop(outbox);
    match tokio::time::timeout(options.close_deadline(), writer.finish()).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => tracing::error!("the response writer panicked"),
        Err(_) => tracing::warn!("the client did not take its last responses in time; dropped"),
    }
    read_result
}

/// The per-connection caps on requests read and not yet answered.
struct Admission {
    /// One per request.
    requests: Arc<Gate>,
    /// One per byte of request line.
    bytes: Arc<Gate>,
}

/// What one request holds until its response is sent.
struct Held {
    _slot: Pass,
    /// `None` only for the request read as the loop was told to stop.
    _bytes: Option<Pass>,
}

impl Admission {
    fn new(options: &ServeOptions) -> Self {
        Admission {
            requests: Gate::new(options.max_in_flight.max(1)),
            bytes: Gate::new(options.max_in_flight_bytes.max(1)),
        }
    }

    /// Waits for room in the outbox, then for a request slot.
    ///
    /// Cancel safety: cancel safe.
    async fn slot(&self, outbox: &Outbox) -> Pass {
        outbox.room().await;
        self.requests.enter(1).await
    }

    /// Waits until a request line of `length` bytes fits (a line longer
    /// than the cap waits until no other is in flight).
    ///
    /// Cancel safety: cancel safe.
    async fn bytes(&self, length: usize) -> Pass {
        self.bytes.enter(length).await
    }
}

/// A task that is aborted if its handle is dropped before it ends: the
/// response writer must not outlive a connection task that was cancelled
/// (a client that never reads would otherwise keep it, and its lines,
/// forever).
struct AbortOnDrop(JoinHandle<()>);

impl AbortOnDrop {
    async fn finish(mut self) -> Result<(), tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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
/// and sends its response line, once the outbox has room for it. A
/// handler that panics is still answered, with an `internal` error. What
/// the request `held` is given back once its line is sent.
///
/// An answer of more than [`HOLD_FREE`] bytes is kept only under a share
/// of the connection's `answers` budget. A `poll` or `read` that finds the
/// budget spent lets its answer go, waits for a share, and asks again: so
/// the output a slow client's requests hold while they wait to be written
/// stays within the budget, whatever the registry would hand out.
async fn answer(
    dispatcher: Dispatcher,
    request: Request,
    started: Option<Result<ops::spawn::Started, JsonError>>,
    mut turn: Option<Turn>,
    outbox: Arc<Outbox>,
    answers: Budget,
    held: Held,
) {
    if let Some(turn) = &mut turn {
        turn.wait().await;
    }
    let result = match started {
        None => run(&dispatcher, &request).await,
        Some(Err(err)) => Err(err),
        Some(Ok(started)) => finish_spawn(&dispatcher, &request, started).await,
    };
    let weight = result.as_ref().map_or(0, Answer::weight);
    if weight <= SMALL_ANSWER && outbox.has_room() {
        // The common case, with no wait: the answer is not held across an
        // await, which keeps this task's future small (tokio moves it
        // several times before its first poll).
        outbox.render_now(|line| write_response(line, &request.id, result.as_ref()));
    } else {
        Box::pin(respond(
            &dispatcher,
            &request,
            result,
            weight,
            &outbox,
            &answers,
        ))
        .await;
    }
    // Only now may the next stdin request to the same handle start.
    drop(turn);
    drop(held);
}

/// Sends the response to `request`, whose handler gave `result` (of
/// `weight`), once the outbox has room for it; see [`answer`].
async fn respond(
    dispatcher: &Dispatcher,
    request: &Request,
    mut result: Result<Answer, JsonError>,
    mut weight: usize,
    outbox: &Outbox,
    answers: &Budget,
) {
    let mut share = None;
    if weight > HOLD_FREE {
        share = answers.try_take(weight);
        if share.is_none() && matches!(request.op.as_str(), "poll" | "read") {
            drop(result);
            share = Some(answers.take(weight).await);
            result = run(dispatcher, request).await;
            weight = result.as_ref().map_or(0, Answer::weight);
        }
    }
    if weight > LARGE_ANSWER {
        let id = request.id.clone();
        let built = outbox
            .render_blocking(weight, move |line| {
                write_response(line, &id, result.as_ref());
            })
            .await;
        if !built {
            let failed = JsonError::Internal("the response could not be written".to_owned());
            outbox
                .render(0, |line| {
                    write_response::<Answer>(line, &request.id, Err(&failed));
                })
                .await;
        }
    } else {
        outbox
            .render(weight, |line| {
                write_response(line, &request.id, result.as_ref());
            })
            .await;
    }
    drop(share);
}

/// Runs the request's handler, catching a panic as an `internal` error.
async fn run(dispatcher: &Dispatcher, request: &Request) -> Result<Answer, JsonError> {
    // Boxed: the task's future is moved several times on its way into
    // the runtime and the handler's is the bulk of it.
    let mut handler = Box::pin(dispatcher.answer(&request.op, &request.params));
    match catch_unwind(handler.as_mut()).await {
        Ok(result) => result,
        Err(()) => {
            tracing::error!(op = request.op, "a request handler panicked");
            Err(JsonError::Internal("the request handler failed".to_owned()))
        }
    }
}

/// Finishes a spawn sent in the read loop, catching a panic as `run` does.
async fn finish_spawn(
    dispatcher: &Dispatcher,
    request: &Request,
    started: ops::spawn::Started,
) -> Result<Answer, JsonError> {
    let mut handler = Box::pin(ops::spawn::finish(dispatcher, started));
    match catch_unwind(handler.as_mut()).await {
        Ok(result) => result,
        Err(()) => {
            tracing::error!(op = request.op, "a request handler panicked");
            Err(JsonError::Internal("the request handler failed".to_owned()))
        }
    }
}

/// A connection's budget for the output its finished requests hold until
/// their lines are sent: bytes, through a [`Gate`] (an answer larger than
/// the budget is held alone).
#[derive(Clone)]
struct Budget(Arc<Gate>);

impl Budget {
    fn new(bytes: usize) -> Self {
        Budget(Gate::new(bytes.max(1)))
    }

    /// A share of `weight` bytes, if free now.
    fn try_take(&self, weight: usize) -> Option<Pass> {
        self.0.try_enter(weight)
    }

    /// Waits for a share of `weight` bytes.
    async fn take(&self, weight: usize) -> Pass {
        self.0.enter(weight).await
    }
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

    /// A `poll` whose answer finds the connection's budget spent lets it
    /// go and asks again once there is room; other ops keep theirs.
    #[tokio::test]
    async fn a_poll_over_the_budget_asks_again_once_there_is_room() {
        use serde_json::json;
        use tokio::io::AsyncReadExt;

        let config = crate::RegistryConfig::default()
            .guard(false)
            .reap_orphans(false)
            .kill_escapees(false);
        let registry = Registry::start(config).await.unwrap();
        let dispatcher = Dispatcher::new(registry.clone());
        let spawn = json!({"command": "head -c 5000 /dev/zero | tr '\\0' b", "mode": "shell"});
        let spawned = dispatcher
            .dispatch("spawn", spawn.as_object().unwrap())
            .await
            .unwrap();
        let handle = json!({"handle_id": spawned["handle_id"]});
        dispatcher
            .dispatch("wait", handle.as_object().unwrap())
            .await
            .unwrap();

        let (outbox, writer) = Outbox::new(1 << 20);
        let (output, mut input) = tokio::io::duplex(1 << 20);
        let writing = tokio::spawn(writer.write_to(output));
        let budget = Budget::new(100);
        let hog = budget.take(100).await;
        // An answer the handler gave before: stale, and over the budget.
        let stale = || Ok(Answer::Value(json!({"data": "x".repeat(5000)})));
        let request = |op: &str| {
            let mut line = json!({"id": op, "op": op});
            line["handle_id"] = spawned["handle_id"].clone();
            Request::parse(line.to_string().as_bytes()).unwrap()
        };
        let (poll, wait) = (request("poll"), request("wait"));
        respond(&dispatcher, &wait, stale(), 5000, &outbox, &budget).await;
        {
            let polling = respond(&dispatcher, &poll, stale(), 5000, &outbox, &budget);
            let mut polling = std::pin::pin!(polling);
            let early = tokio::time::timeout(Duration::from_millis(100), polling.as_mut()).await;
            assert!(early.is_err(), "answered over the budget");
            drop(hog);
            polling.await;
        }
        drop(outbox);
        writing.await.unwrap();
        let mut written = String::new();
        input.read_to_string(&mut written).await.unwrap();
        let lines: Vec<serde_json::Value> = written
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        // The wait kept its answer; the poll asked the registry again.
        assert_eq!(lines[0]["id"], "wait");
        assert_eq!(
            lines[0]["result"]["data"].as_str().map(str::len),
            Some(5000)
        );
        assert_eq!(lines[1]["id"], "poll");
        assert_eq!(lines[1]["result"]["stdout"], "b".repeat(5000));
        registry.shutdown().await.unwrap();
    }
}
