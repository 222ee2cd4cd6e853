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
        // A nearly full buffer is kept as is; a small read is copied out so
        // a few bytes never pin a whole 64 KiB allocation.
        let chunk = if n >= READ_SIZE * 3 / 4 {
            buf.freeze()
        } else {
            Bytes::copy_from_slice(&buf[..n])
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
    let _ = actor.cast(Event::StreamClosed(stream).into());
}
