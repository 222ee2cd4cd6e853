//! [`Outbox`]: the response lines waiting to be written, in one buffer.
//!
//! Request tasks append each finished line whole, under a lock, and the
//! writer takes everything that has gathered and writes it with one write
//! and one flush. Batching matters: tokio's stdout hands every write to
//! the blocking pool, and writing each line on its own capped the server
//! at about 14,000 responses a second. A line is copied into the buffer
//! rather than handed over in an allocation of its own (a channel of
//! `Vec`s before): allocated on one thread and freed on another, those
//! kept glibc's allocator taking its locks.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// A batch larger than this is not kept for reuse once written.
const KEEP_CAPACITY: usize = 1024 * 1024;

/// Response lines on their way to the output. Shared by the request tasks
/// (through an `Arc`) and the one task running [`Outbox::write_to`].
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Told when the buffer stops being empty, and when the box closes.
    ready: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Whole lines, each ending with `\n`.
    lines: Vec<u8>,
    /// No more lines will come: write what is left and stop.
    closed: bool,
    /// The output failed: lines are dropped from now on.
    broken: bool,
}

impl Outbox {
    /// Appends one whole line (its `\n` included). Never waits for the
    /// output.
    pub(crate) fn push(&self, line: &[u8]) {
        let mut state = self.lock();
        if state.broken {
            return;
        }
        let was_empty = state.lines.is_empty();
        state.lines.extend_from_slice(line);
        drop(state);
        if was_empty {
            self.ready.notify_one();
        }
    }

    /// No more lines will be pushed: [`write_to`](Self::write_to) writes
    /// what is left, then returns.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Writes the lines as they come, each batch with one write and a
    /// flush, until the box is closed and empty; then shuts `output`
    /// down. Once the output fails (the reader went away), lines are
    /// dropped so that requests never block on it.
    pub(crate) async fn write_to<W: AsyncWrite + Unpin>(&self, output: W) {
        // Written straight from the batches: no buffer of its own needed.
        let mut output = output;
        let mut batch = Vec::new();
        loop {
            {
                let mut state = self.lock();
                if state.lines.is_empty() {
                    if state.closed {
                        break;
                    }
                } else {
                    // Swap in the last batch's buffer, emptied, for reuse.
                    std::mem::swap(&mut state.lines, &mut batch);
                }
            }
            if batch.is_empty() {
                self.ready.notified().await;
                continue;
            }
            let mut written = output.write_all(&batch).await;
            if written.is_ok() {
                written = output.flush().await;
            }
            if let Err(err) = written {
                tracing::warn!(%err, "cannot write responses; dropping them from now on");
                let mut state = self.lock();
                state.broken = true;
                state.lines = Vec::new();
                return;
            }
            if batch.capacity() > KEEP_CAPACITY {
                batch = Vec::new();
            } else {
                batch.clear();
            }
        }
        let _ = output.shutdown().await;
    }

    /// The lock, even if a panicking thread poisoned it: the buffer only
    /// ever holds whole lines.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use super::*;

    #[tokio::test]
    async fn lines_pushed_before_and_after_the_writer_starts_are_all_written() {
        let outbox = Arc::new(Outbox::default());
        outbox.push(b"one\n");
        let (output, mut input) = tokio::io::duplex(64);
        let writer = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.write_to(output).await }
        });
        tokio::task::yield_now().await;
        outbox.push(b"two\n");
        outbox.push(b"three\n");
        outbox.close();
        let mut written = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut input, &mut written)
            .await
            .unwrap();
        writer.await.unwrap();
        assert_eq!(written, "one\ntwo\nthree\n");
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
    async fn after_the_output_fails_lines_are_dropped() {
        let outbox = Outbox::default();
        outbox.push(b"lost\n");
        outbox.write_to(Broken).await;
        outbox.push(b"dropped\n");
        assert!(outbox.lock().lines.is_empty());
    }
}
