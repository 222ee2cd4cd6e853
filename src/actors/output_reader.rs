//! The task that reads one of a child's pipes and sends the bytes to the
//! process actor, with bounded memory in flight.
//!
//! A reader ends at end of file, or when its process actor says the drain
//! is over (the drain grace passed, or the handle is being killed after
//! its child exited, while some descendant still holds the pipe). Then it
//! first reads what the pipe already holds, without waiting: the drain
//! grace stops the wait for descendants, never throws away bytes already
//! written.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ractor::ActorRef;
use tokio::net::unix::pipe;
use tokio::sync::{Semaphore, watch};

use crate::messages::{Event, OutputStream, ProcessMsg};

/// Bytes asked for per read: a whole default pipe buffer.
const READ_SIZE: usize = 64 * 1024;
/// Chunks a reader may have sent that the actor has not stored yet. When
/// they are all in flight the reader stops reading, the pipe fills and the
/// child blocks on write: memory stays bounded however fast the child is.
const CHUNKS_IN_FLIGHT: usize = 4;
/// The most a final drain reads: the largest pipe buffer Linux allows by
/// default (`/proc/sys/fs/pipe-max-size`, 1 MiB). A writer that keeps
/// writing while the drain runs cannot make it last for ever.
const FINAL_DRAIN_MAX: usize = 1024 * 1024;

/// Reads `pipe` until end of file, or until `drain_now` turns true and what
/// the pipe holds then has been read, sending each chunk to `actor` in
/// order, then [`Event::StreamClosed`]. No buffer is held while the pipe is
/// idle.
pub(crate) async fn read_stream(
    pipe: pipe::Receiver,
    stream: OutputStream,
    actor: ActorRef<ProcessMsg>,
    mut drain_now: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(CHUNKS_IN_FLIGHT));
    let mut final_drain = false;
    loop {
        // The drain's end is checked first: a writer that never pauses
        // must not keep the pipe readable, and this loop going, for ever.
        let permit = tokio::select! {
            biased;
            _ = drain_now.wait_for(|now| *now) => {
                final_drain = true;
                break;
            }
            permit = permits.clone().acquire_owned() => permit,
        };
        let Ok(permit) = permit else { break };
        tokio::select! {
            biased;
            _ = drain_now.wait_for(|now| *now) => {
                final_drain = true;
                break;
            }
            ready = pipe.readable() => {
                if let Err(err) = ready {
                    tracing::warn!(stream = stream.as_str(), %err, "waiting on the pipe failed; capture ends");
                    break;
                }
            }
        }
        let mut buf = BytesMut::with_capacity(READ_SIZE);
        let n = match pipe.try_read_buf(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(err) => {
                tracing::warn!(stream = stream.as_str(), %err, "reading the pipe failed; capture ends");
                break;
            }
        };
        if !send(&actor, stream, chunk(buf, n), permit) {
            return;
        }
    }
    if final_drain {
        let mut left = FINAL_DRAIN_MAX;
        while left > 0 {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let mut buf = BytesMut::zeroed(READ_SIZE.min(left));
            // Straight to the OS, not through tokio's readiness cache: the
            // reactor may not have seen the pipe turn readable yet on a
            // busy runtime, and the pipe is non-blocking, so an empty pipe
            // answers EAGAIN at once.
            let n = match rustix::io::read(&pipe, &mut buf[..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            };
            left -= n;
            if !send(&actor, stream, chunk(buf, n), permit) {
                return;
            }
        }
    }
    let _ = actor.cast(Event::StreamClosed(stream).into());
}

/// The first `n` bytes of `buf` as a chunk. A nearly full buffer is kept as
/// is; a small read is copied out so a few bytes never pin a whole 64 KiB
/// allocation.
fn chunk(mut buf: BytesMut, n: usize) -> Bytes {
    buf.truncate(n);
    if n >= READ_SIZE * 3 / 4 {
        buf.freeze()
    } else {
        Bytes::copy_from_slice(&buf)
    }
}

/// Sends one chunk; `false` if the actor is gone.
fn send(
    actor: &ActorRef<ProcessMsg>,
    stream: OutputStream,
    chunk: Bytes,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> bool {
    let event = Event::Output {
        stream,
        chunk,
        _permit: permit,
    };
    actor.cast(event.into()).is_ok()
}

#[cfg(test)]
mod tests {
    use std::os::fd::OwnedFd;

    use ractor::{Actor, ActorProcessingErr};
    use tokio::sync::oneshot;

    use super::*;
    use crate::messages::ProcessEvent;

    /// Stands in for the process actor: adds up the bytes of one stream
    /// and reports the total when the stream closes.
    struct Collector;

    impl Actor for Collector {
        type Msg = ProcessMsg;
        type State = (usize, Option<oneshot::Sender<usize>>);
        type Arguments = oneshot::Sender<usize>;

        async fn pre_start(
            &self,
            _: ActorRef<ProcessMsg>,
            done: oneshot::Sender<usize>,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok((0, Some(done)))
        }

        async fn handle(
            &self,
            _: ActorRef<ProcessMsg>,
            message: ProcessMsg,
            state: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            match message {
                ProcessMsg::Event(ProcessEvent(Event::Output { chunk, .. })) => {
                    state.0 += chunk.len()
                }
                ProcessMsg::Event(ProcessEvent(Event::StreamClosed(_))) => {
                    if let Some(done) = state.1.take() {
                        let _ = done.send(state.0);
                    }
                }
                _ => {}
            }
            Ok(())
        }
    }

    /// Reads `written` bytes put in a pipe whose write end stays open (a
    /// descendant holding it), with the drain already over when the reader
    /// starts: what the pipe holds must still all be read.
    async fn drain_of(written: usize) -> usize {
        let (read_end, write_end): (OwnedFd, OwnedFd) = rustix::pipe::pipe().expect("a pipe");
        rustix::pipe::fcntl_setpipe_size(&write_end, 1 << 20).expect("a 1 MiB pipe");
        let data = vec![b'x'; written];
        let mut left = &data[..];
        while !left.is_empty() {
            let n = rustix::io::write(&write_end, left).expect("writing the pipe");
            left = &left[n..];
        }
        let pipe = pipe::Receiver::from_owned_fd(read_end).expect("registering the pipe");
        let (done, total) = oneshot::channel();
        let (actor, handle) = Actor::spawn(None, Collector, done)
            .await
            .expect("collector");
        let (_drain_now, drain_rx) = watch::channel(true);
        read_stream(pipe, OutputStream::Stdout, actor.clone(), drain_rx).await;
        let total = total.await.expect("the stream closed");
        actor.stop(None);
        let _ = handle.await;
        drop(write_end);
        total
    }

    #[tokio::test]
    async fn a_final_drain_reads_what_the_pipe_holds() {
        assert_eq!(drain_of(60_000).await, 60_000);
        assert_eq!(drain_of((1 << 20) - 1).await, (1 << 20) - 1);
        assert_eq!(drain_of(0).await, 0);
    }
}
