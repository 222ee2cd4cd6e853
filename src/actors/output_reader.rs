//! The task that reads one of a child's pipes and sends the bytes to the
//! process actor, with bounded memory in flight.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ractor::ActorRef;
use tokio::net::unix::pipe;
use tokio::sync::Semaphore;

use crate::messages::{Event, OutputStream, ProcessMsg};

/// Bytes asked for per read: a whole default pipe buffer.
const READ_SIZE: usize = 64 * 1024;
/// Chunks a reader may have sent that the actor has not stored yet. When
/// they are all in flight the reader stops reading, the pipe fills and the
/// child blocks on write: memory stays bounded however fast the child is.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Reads `pipe` until end of file, sending each chunk to `actor` in order,
/// then [`Event::StreamClosed`]. No buffer is held while the pipe is idle.
pub(crate) async fn read_stream(
    pipe: pipe::Receiver,
    stream: OutputStream,
    actor: ActorRef<ProcessMsg>,
) {
    let permits = Arc::new(Semaphore::new(CHUNKS_IN_FLIGHT));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        if let Err(err) = pipe.readable().await {
            tracing::warn!(stream = stream.as_str(), %err, "waiting on the pipe failed; capture ends");
            break;
        }
        let mut buf = BytesMut::with_capacity(READ_SIZE);
        let end = fill(&pipe, &mut buf);
        if !buf.is_empty() {
            // A nearly full buffer is kept as is; a small read is copied out
            // so a few bytes never pin a whole 64 KiB allocation.
            let chunk = if buf.len() >= READ_SIZE * 3 / 4 {
                buf.freeze()
            } else {
                Bytes::copy_from_slice(&buf)
            };
            let event = Event::Output {
                stream,
                chunk,
                _permit: permit,
            };
            if actor.cast(event.into()).is_err() {
                return;
            }
        }
        match end {
            Fill::Drained => {}
            Fill::Eof => break,
            Fill::Failed(err) => {
                tracing::warn!(stream = stream.as_str(), %err, "reading the pipe failed; capture ends");
                break;
            }
        }
    }
    let _ = actor.cast(Event::StreamClosed(stream).into());
}

/// How filling a buffer from the pipe ended.
enum Fill {
    /// The buffer is full, or the pipe is empty for now.
    Drained,
    /// End of file: every writer has closed the pipe.
    Eof,
    /// Reading failed, which ends the capture too.
    Failed(std::io::Error),
}

/// Reads what the pipe holds into `buf` until `buf` is full or the pipe is
/// empty. Filling the buffer, rather than sending each read as it comes,
/// matters for a fast writer: it writes in small pieces (`head` in 8 KiB
/// writes), and one message per piece cost a copy, a message and a wake-up
/// of the actor each, which made capture several times more
/// context-switch-heavy than the child itself.
fn fill(pipe: &pipe::Receiver, buf: &mut BytesMut) -> Fill {
    // Never read into a full `BytesMut`: it would grow it.
    while buf.len() < buf.capacity() {
        match pipe.try_read_buf(buf) {
            Ok(0) => return Fill::Eof,
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return Fill::Drained,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Fill::Failed(err),
        }
    }
    Fill::Drained
}
