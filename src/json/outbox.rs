//! [`Outbox`]: one connection's response lines on their way out, and the
//! bound on how many bytes of them may wait unsent.
//!
//! Request tasks hand each finished line to the one task that owns the
//! output ([`Writer::write_to`]) through a channel; nothing is shared under
//! a lock. The writer takes every line that has gathered and writes them
//! with one write and one flush: tokio's stdout hands every write to the
//! blocking pool, and writing each line on its own capped the server at
//! about 14,000 responses a second.
//!
//! # Back-pressure
//!
//! The outbox counts the bytes handed over and not yet written. While that
//! count is above the bound, [`room`](Outbox::room) waits: the reading loop
//! calls it before reading each request, so a client that does not read
//! its responses stops being read. A response is rendered only in one of
//! [`RENDERING`] slots, and only when the count is within the bound, so
//! the unsent bytes never pass the bound plus [`RENDERING`] lines. Once the
//! output fails (the reader went away) lines are dropped and nothing waits.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};

use super::gate::{Gate, Waiting};

/// How many responses of one connection may be rendered at once; each
/// holds at most one line outside the unsent bound.
pub(crate) const RENDERING: usize = 2;

/// An answer carrying at most this many bytes of output is rendered
/// without a render slot: its line is small (the in-flight cap bounds how
/// many there are), and a slot for each would cost every `poll` a wait.
pub(crate) const SMALL_ANSWER: usize = 4 * 1024;

/// A render buffer (see [`LINE`]) larger than this is handed over as the
/// line itself rather than copied, and not kept for the next line.
const KEEP_LINE_CAPACITY: usize = 64 * 1024;

/// Room for a snapshot line's keys and small values beyond its output.
const LINE_KEYS: usize = 4096;

/// Small lines are gathered into one write up to this size; a line this
/// large is written on its own, without a copy.
const BATCH_BYTES: usize = 1024 * 1024;

/// A write buffer larger than this is not kept for reuse once written.
const KEEP_BATCH_CAPACITY: usize = 2 * BATCH_BYTES;

/// The most lines taken from the channel for one write.
const BATCH_LINES: usize = 1024;

thread_local! {
    /// Where a request task serializes its response line: one buffer for
    /// each worker thread, reused, so that a small line costs one
    /// allocation of its exact size.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The sending side, shared by the reading loop and the request tasks of
/// one connection (through an `Arc`). The writer stops once every `Outbox`
/// is dropped and the lines sent are written.
#[derive(Debug)]
pub(crate) struct Outbox {
    lines: mpsc::UnboundedSender<Vec<u8>>,
    /// Render slots: at most [`RENDERING`] large lines are built at once.
    rendering: Arc<Gate>,
    shared: Arc<Shared>,
}

/// What the outbox and its writer both see: counters and a wake-up, no
/// lock.
#[derive(Debug)]
struct Shared {
    /// Bytes of the lines sent and not yet written.
    unsent: AtomicUsize,
    /// Above this many unsent bytes, [`Outbox::room`] waits.
    bound: usize,
    /// The output failed: lines are dropped from now on.
    broken: AtomicBool,
    /// Tasks waiting in [`Outbox::room`].
    waiters: AtomicUsize,
    /// Told after a write while someone waits, and when the output breaks.
    drained: Notify,
}

impl Shared {
    fn has_room(&self) -> bool {
        self.broken.load(Ordering::SeqCst) || self.unsent.load(Ordering::SeqCst) <= self.bound
    }
}

/// The receiving side: owns the output. See [`Writer::write_to`].
#[derive(Debug)]
pub(crate) struct Writer {
    lines: mpsc::UnboundedReceiver<Vec<u8>>,
    shared: Arc<Shared>,
}

impl Outbox {
    /// An outbox whose [`room`](Self::room) waits while more than `bound`
    /// bytes are unsent, and the writer that drains it.
    pub(crate) fn new(bound: usize) -> (Outbox, Writer) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            unsent: AtomicUsize::new(0),
            bound,
            broken: AtomicBool::new(false),
            waiters: AtomicUsize::new(0),
            drained: Notify::new(),
        });
        let outbox = Outbox {
            lines: sender,
            rendering: Gate::new(RENDERING),
            shared: shared.clone(),
        };
        let writer = Writer {
            lines: receiver,
            shared,
        };
        (outbox, writer)
    }

    /// Waits until the unsent bytes are within the bound (or the output
    /// has failed, so that nothing waits on it).
    ///
    /// Cancel safety: cancel safe; it holds nothing.
    pub(crate) async fn room(&self) {
        if self.shared.has_room() {
            return;
        }
        let _waiting = Waiting::new(&self.shared.waiters);
        self.wait_for_room().await;
    }

    async fn wait_for_room(&self) {
        loop {
            let notified = self.shared.drained.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check below, so that a write finishing
            // in between still wakes us.
            notified.as_mut().enable();
            if self.shared.has_room() {
                return;
            }
            notified.await;
        }
    }

    /// Sends one whole line (its `\n` included) without waiting: for the
    /// reading loop's own small answers (a refused line), sent after
    /// [`room`](Self::room).
    pub(crate) fn push(&self, line: &[u8]) {
        self.send(line.to_vec());
    }

    /// Whether the unsent bytes are within the bound now (or the output
    /// has failed).
    pub(crate) fn has_room(&self) -> bool {
        self.shared.has_room()
    }

    /// Builds a line with `render` now and sends it: for a small answer
    /// when [`has_room`](Self::has_room) said yes.
    pub(crate) fn render_now(&self, render: impl FnOnce(&mut Vec<u8>)) {
        if self.shared.broken.load(Ordering::Acquire) {
            return;
        }
        let line = LINE.with_borrow_mut(|buffer| {
            buffer.clear();
            render(buffer);
            if buffer.capacity() > KEEP_LINE_CAPACITY {
                // A large line goes as it is, its spare capacity given
                // back, rather than copied.
                let mut line = std::mem::take(buffer);
                line.shrink_to_fit();
                line
            } else {
                buffer.to_vec()
            }
        });
        self.send(line);
    }

    /// Waits for room (and a render slot, for an answer of more than
    /// [`SMALL_ANSWER`] bytes of output: its `weight`), then builds a line
    /// with `render` (which appends it, `\n` included, to an empty buffer)
    /// and sends it.
    ///
    /// Cancel safety: cancel safe until `render` runs; nothing is sent if
    /// it is dropped before.
    pub(crate) async fn render(&self, weight: usize, render: impl FnOnce(&mut Vec<u8>)) {
        let _slot = if weight > SMALL_ANSWER {
            Some(self.rendering.enter(1).await)
        } else {
            None
        };
        self.room().await;
        // Nobody will read it if the output broke: then it is not built.
        self.render_now(render);
    }

    /// As [`render`](Self::render), but builds the line on tokio's
    /// blocking pool: for a line large enough (a snapshot with megabytes of
    /// output) that building it would hold a worker thread, and the other
    /// connections' requests waiting on it, for milliseconds. The buffer
    /// starts with room for `weight` bytes of output as base64 (the most a
    /// snapshot's output costs), so that it does not double its way up.
    /// Returns `false` if `render` panicked, and then nothing was sent.
    pub(crate) async fn render_blocking(
        &self,
        weight: usize,
        render: impl FnOnce(&mut Vec<u8>) + Send + 'static,
    ) -> bool {
        let _slot = self.rendering.enter(1).await;
        self.room().await;
        if self.shared.broken.load(Ordering::Acquire) {
            return true;
        }
        let capacity = weight
            .div_ceil(3)
            .saturating_mul(4)
            .saturating_add(LINE_KEYS);
        let built = tokio::task::spawn_blocking(move || {
            let mut line = Vec::with_capacity(capacity);
            render(&mut line);
            line
        })
        .await;
        match built {
            Ok(line) => {
                self.send(line);
                true
            }
            Err(err) => {
                tracing::error!(%err, "building a response failed");
                false
            }
        }
    }

    fn send(&self, line: Vec<u8>) {
        if self.shared.broken.load(Ordering::Acquire) {
            return;
        }
        let length = line.len();
        self.shared.unsent.fetch_add(length, Ordering::AcqRel);
        if self.lines.send(line).is_err() {
            // The writer is gone (its output failed): nothing to count.
            self.shared.unsent.fetch_sub(length, Ordering::AcqRel);
        }
    }

    /// Bytes sent and not yet written.
    #[cfg(test)]
    fn unsent(&self) -> usize {
        self.shared.unsent.load(Ordering::Acquire)
    }
}

impl Writer {
    /// Writes and empties `batch` (if it holds anything), and counts it
    /// as sent.
    async fn write<W: AsyncWrite + Unpin>(
        &self,
        output: &mut W,
        batch: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let written = output.write_all(batch).await;
        self.wrote(batch.len());
        batch.clear();
        written
    }

    /// `bytes` are written (or lost with the output): room for more.
    fn wrote(&self, bytes: usize) {
        self.shared.unsent.fetch_sub(bytes, Ordering::SeqCst);
        // Sequentially consistent with the waiter's count-then-check.
        if self.shared.waiters.load(Ordering::SeqCst) > 0 {
            self.shared.drained.notify_waiters();
        }
    }

    /// Writes the lines as they come, each batch with one write and a
    /// flush, until every [`Outbox`] is dropped and the lines are written;
    /// then shuts `output` down. Once the output fails (the reader went
    /// away), lines are dropped so that requests never wait on it.
    pub(crate) async fn write_to<W: AsyncWrite + Unpin>(mut self, output: W) {
        let mut output = output;
        let mut lines = Vec::with_capacity(BATCH_LINES);
        let mut batch = Vec::new();
        while self.lines.recv_many(&mut lines, BATCH_LINES).await > 0 {
            let mut written = Ok(());
            for line in lines.drain(..) {
                if line.len() >= BATCH_BYTES {
                    written = self.write(&mut output, &mut batch).await;
                    if written.is_ok() {
                        written = output.write_all(&line).await;
                        self.wrote(line.len());
                    }
                } else {
                    batch.extend_from_slice(&line);
                    if batch.len() >= BATCH_BYTES {
                        written = self.write(&mut output, &mut batch).await;
                    }
                }
                if written.is_err() {
                    break;
                }
            }
            if written.is_ok() {
                written = self.write(&mut output, &mut batch).await;
            }
            if written.is_ok() {
                written = output.flush().await;
            }
            if batch.capacity() > KEEP_BATCH_CAPACITY {
                batch = Vec::new();
            }
            if let Err(err) = written {
                tracing::warn!(%err, "cannot write responses; dropping them from now on");
                self.shared.broken.store(true, Ordering::Release);
                self.shared.drained.notify_waiters();
                return;
            }
        }
        let _ = output.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use tokio::io::AsyncReadExt;

    use super::*;

    fn line(text: &str) -> impl FnOnce(&mut Vec<u8>) + '_ {
        move |buffer| buffer.extend_from_slice(text.as_bytes())
    }

    #[tokio::test]
    async fn lines_sent_before_and_after_the_writer_starts_are_all_written() {
        let (outbox, writer) = Outbox::new(1024);
        outbox.render(0, line("one\n")).await;
        let (output, mut input) = tokio::io::duplex(64);
        let writer = tokio::spawn(writer.write_to(output));
        tokio::task::yield_now().await;
        outbox.push(b"two\n");
        outbox.render(0, line("three\n")).await;
        drop(outbox);
        let mut written = String::new();
        input.read_to_string(&mut written).await.unwrap();
        writer.await.unwrap();
        assert_eq!(written, "one\ntwo\nthree\n");
    }

    #[tokio::test]
    async fn room_waits_while_the_unsent_bytes_pass_the_bound_and_until_they_drain() {
        let (outbox, writer) = Outbox::new(10);
        // A pipe of 16 bytes that nobody reads yet.
        let (output, mut input) = tokio::io::duplex(16);
        let writer = tokio::spawn(writer.write_to(output));
        outbox.push(&[b'x'; 100]);
        assert_eq!(outbox.unsent(), 100);
        let waited = tokio::time::timeout(Duration::from_millis(50), outbox.room()).await;
        assert!(waited.is_err(), "room granted with 100 bytes unsent");
        // A line rendered now waits too, and is not built meanwhile.
        let rendered = tokio::time::timeout(
            Duration::from_millis(50),
            outbox.render(0, |_| panic!("rendered past the bound")),
        )
        .await;
        assert!(rendered.is_err());
        let reading = tokio::spawn(async move {
            let mut all = Vec::new();
            input.read_to_end(&mut all).await.unwrap();
            all
        });
        tokio::time::timeout(Duration::from_secs(10), outbox.room())
            .await
            .expect("room once the reader drains the output");
        assert_eq!(outbox.unsent(), 0);
        drop(outbox);
        writer.await.unwrap();
        assert_eq!(reading.await.unwrap().len(), 100);
    }

    /// An output that always fails, as a closed pipe does.
    struct Broken;

    impl AsyncWrite for Broken {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn after_the_output_fails_lines_are_dropped_and_nothing_waits() {
        let (outbox, writer) = Outbox::new(1);
        outbox.push(b"lost, and past the bound\n");
        writer.write_to(Broken).await;
        outbox.push(b"dropped\n");
        assert_eq!(outbox.unsent(), 0);
        tokio::time::timeout(Duration::from_secs(10), outbox.room())
            .await
            .expect("no waiting on a broken output");
    }
}
