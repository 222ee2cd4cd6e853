//! The read side of a node's session until it authenticates: what
//! ractor_cluster may read from a peer that has not proved the cookie.
//!
//! ractor_cluster reads frames (an 8-byte big-endian length, then that
//! many bytes of protobuf) with one limit for the whole session, which a
//! node must set high (48 MiB answers travel through it), and with no
//! deadline before authentication. [`GatedRead`] sits under its reader
//! and, until the admission table says the session authenticated:
//!
//! - hands on no frame announced above [`PRE_AUTH_FRAME_BYTES`], and no
//!   more than [`PRE_AUTH_BYTES`] in all: such a frame's length is held
//!   back, so ractor_cluster allocates nothing for it, and the rest stays
//!   in the kernel's socket buffer;
//! - fails the read, which ends the session, when the connection's
//!   deadline passes or the admission table evicts it.
//!
//! Held bytes are not refused: if the verdict comes first (a client whose
//! first frames after the handshake raced the node's bookkeeping), they
//! are handed on and the session goes on as if nothing happened. After
//! the verdict, reads pass straight through.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::oneshot;
use tokio::time::Sleep;

/// The largest frame a peer may send before it authenticates. The
/// handshake's frames (a name, a challenge reply, a status) are well under
/// 1 KiB.
pub const PRE_AUTH_FRAME_BYTES: u64 = 16 << 10;

/// How many bytes of frames a peer may send before it authenticates.
pub const PRE_AUTH_BYTES: u64 = 64 << 10;

/// The length prefix of a ractor_cluster frame.
const PREFIX: usize = 8;

/// Pre-authentication body reads go through a buffer of this size.
const BODY_CHUNK: usize = 8 << 10;

/// What comes of a pending connection: `()` once its session
/// authenticated; a dropped sender (evicted, or the node stopping) closes
/// it.
pub(crate) type Verdict = oneshot::Receiver<()>;

/// Where the frame scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Collecting the next frame's length prefix, not handed on yet.
    Prefix { bytes: [u8; PREFIX], filled: usize },
    /// Handing on an accepted prefix; `body` bytes follow it.
    Give {
        bytes: [u8; PREFIX],
        given: usize,
        body: u64,
    },
    /// Passing on the body of an accepted frame.
    Body { left: u64 },
    /// A frame over the limits: nothing more until the verdict.
    Held { bytes: [u8; PREFIX] },
}

/// What the reader should do next before the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Read up to this many prefix bytes into the scan.
    ReadPrefix(usize),
    /// Hand on these prefix bytes.
    Give([u8; PREFIX], usize),
    /// Read and hand on up to this many body bytes.
    ReadBody(u64),
    /// Wait for the verdict or the deadline.
    Hold,
}

/// The frame scan of one connection before authentication: pure logic.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frames {
    scan: Scan,
    /// Bytes of frames that may still be accepted.
    budget: u64,
}

impl Frames {
    fn new() -> Self {
        Frames {
            scan: Scan::Prefix {
                bytes: [0; PREFIX],
                filled: 0,
            },
            budget: PRE_AUTH_BYTES,
        }
    }

    fn step(&self) -> Step {
        match self.scan {
            Scan::Prefix { filled, .. } => Step::ReadPrefix(PREFIX - filled),
            Scan::Give { bytes, given, .. } => Step::Give(bytes, given),
            Scan::Body { left } => Step::ReadBody(left),
            Scan::Held { .. } => Step::Hold,
        }
    }

    /// `read` more prefix bytes arrived (already written into the scan's
    /// buffer by [`prefix_buf`](Self::prefix_buf)).
    fn read_prefix(&mut self, read: usize) {
        let Scan::Prefix { bytes, filled } = &mut self.scan else {
            return;
        };
        *filled += read;
        if *filled < PREFIX {
            return;
        }
        let bytes = *bytes;
        let body = u64::from_be_bytes(bytes);
        let whole = body.saturating_add(PREFIX as u64);
        self.scan = if body <= PRE_AUTH_FRAME_BYTES && whole <= self.budget {
            self.budget -= whole;
            Scan::Give {
                bytes,
                given: 0,
                body,
            }
        } else {
            Scan::Held { bytes }
        };
    }

    /// Where the next prefix bytes go.
    fn prefix_buf(&mut self) -> &mut [u8] {
        match &mut self.scan {
            Scan::Prefix { bytes, filled } => &mut bytes[*filled..],
            _ => &mut [],
        }
    }

    /// `n` prefix bytes were handed on.
    fn gave(&mut self, n: usize) {
        if let Scan::Give { bytes, given, body } = self.scan {
            let given = given + n;
            self.scan = match (given < PREFIX, body) {
                (true, _) => Scan::Give { bytes, given, body },
                (false, 0) => Scan::Prefix {
                    bytes: [0; PREFIX],
                    filled: 0,
                },
                (false, left) => Scan::Body { left },
            };
        }
    }

    /// `n` body bytes were handed on.
    fn passed(&mut self, n: usize) {
        if let Scan::Body { left } = self.scan {
            let left = left.saturating_sub(n as u64);
            self.scan = if left == 0 {
                Scan::Prefix {
                    bytes: [0; PREFIX],
                    filled: 0,
                }
            } else {
                Scan::Body { left }
            };
        }
    }

    /// Bytes taken from the stream and not handed on yet: they go first
    /// once the session is open.
    fn unread(&self) -> Backlog {
        let (bytes, start, end) = match self.scan {
            Scan::Prefix { bytes, filled } => (bytes, 0, filled),
            Scan::Give { bytes, given, .. } => (bytes, given, PREFIX),
            Scan::Held { bytes } => (bytes, 0, PREFIX),
            Scan::Body { .. } => ([0; PREFIX], 0, 0),
        };
        Backlog { bytes, start, end }
    }
}

/// Bytes read before the verdict and still owed to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Backlog {
    bytes: [u8; PREFIX],
    start: usize,
    end: usize,
}

enum Phase {
    Pending {
        verdict: Verdict,
        deadline: Pin<Box<Sleep>>,
        frames: Frames,
    },
    Open(Backlog),
    /// Evicted or out of time: every read fails so.
    Failed(io::ErrorKind, &'static str),
}

/// The read half of a node's session, gated until authentication (see
/// the module docs).
pub(crate) struct GatedRead<R> {
    inner: R,
    phase: Phase,
}

impl<R> GatedRead<R> {
    /// Gates `inner` until `verdict` says the session authenticated; the
    /// read fails once `deadline` passes first or the verdict's sender is
    /// dropped.
    pub(crate) fn new(inner: R, verdict: Verdict, deadline: Pin<Box<Sleep>>) -> Self {
        GatedRead {
            inner,
            phase: Phase::Pending {
                verdict,
                deadline,
                frames: Frames::new(),
            },
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for GatedRead<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let GatedRead { inner, phase } = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            let (verdict, deadline, frames) = match phase {
                Phase::Open(backlog) => {
                    if backlog.start < backlog.end {
                        let n = (backlog.end - backlog.start).min(buf.remaining());
                        buf.put_slice(&backlog.bytes[backlog.start..backlog.start + n]);
                        backlog.start += n;
                        return Poll::Ready(Ok(()));
                    }
                    return Pin::new(inner).poll_read(cx, buf);
                }
                Phase::Failed(kind, why) => return Poll::Ready(Err(io::Error::new(*kind, *why))),
                Phase::Pending {
                    verdict,
                    deadline,
                    frames,
                } => (verdict, deadline, frames),
            };
            match Pin::new(verdict).poll(cx) {
                Poll::Ready(Ok(())) => {
                    *phase = Phase::Open(frames.unread());
                    continue;
                }
                Poll::Ready(Err(_)) => {
                    *phase = Phase::Failed(
                        io::ErrorKind::ConnectionAborted,
                        "connection closed before it authenticated (evicted or node stopping)",
                    );
                    continue;
                }
                Poll::Pending => {}
            }
            if deadline.as_mut().poll(cx).is_ready() {
                *phase = Phase::Failed(
                    io::ErrorKind::TimedOut,
                    "no authentication before the handshake deadline",
                );
                continue;
            }
            match frames.step() {
                Step::ReadPrefix(_) => {
                    let mut prefix = ReadBuf::new(frames.prefix_buf());
                    match Pin::new(&mut *inner).poll_read(cx, &mut prefix) {
                        Poll::Ready(Ok(())) => {}
                        other => return other,
                    }
                    let read = prefix.filled().len();
                    if read == 0 {
                        // End of stream: the caller sees it as such.
                        return Poll::Ready(Ok(()));
                    }
                    frames.read_prefix(read);
                }
                Step::Give(bytes, given) => {
                    let n = (PREFIX - given).min(buf.remaining());
                    buf.put_slice(&bytes[given..given + n]);
                    frames.gave(n);
                    return Poll::Ready(Ok(()));
                }
                Step::ReadBody(left) => {
                    let mut chunk = [0u8; BODY_CHUNK];
                    let most = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(buf.remaining())
                        .min(BODY_CHUNK);
                    let mut body = ReadBuf::new(&mut chunk[..most]);
                    match Pin::new(&mut *inner).poll_read(cx, &mut body) {
                        Poll::Ready(Ok(())) => {}
                        other => return other,
                    }
                    let read = body.filled().len();
                    buf.put_slice(body.filled());
                    frames.passed(read);
                    return Poll::Ready(Ok(()));
                }
                // The verdict and the deadline have registered the waker.
                Step::Hold => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u64).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    fn far() -> Pin<Box<Sleep>> {
        Box::pin(tokio::time::sleep(Duration::from_secs(3600)))
    }

    #[test]
    fn small_frames_pass_and_use_up_the_budget() {
        let mut frames = Frames::new();
        frames.prefix_buf().copy_from_slice(&100u64.to_be_bytes());
        frames.read_prefix(PREFIX);
        assert_eq!(frames.step(), Step::Give(100u64.to_be_bytes(), 0));
        frames.gave(3);
        frames.gave(5);
        assert_eq!(frames.step(), Step::ReadBody(100));
        frames.passed(60);
        frames.passed(40);
        assert_eq!(frames.step(), Step::ReadPrefix(PREFIX));
        assert_eq!(frames.budget, PRE_AUTH_BYTES - 108);
    }

    #[test]
    fn a_frame_over_the_limit_is_held_with_its_prefix() {
        let mut frames = Frames::new();
        let big = (PRE_AUTH_FRAME_BYTES + 1).to_be_bytes();
        frames.prefix_buf()[..5].copy_from_slice(&big[..5]);
        frames.read_prefix(5);
        assert_eq!(frames.step(), Step::ReadPrefix(3));
        frames.prefix_buf().copy_from_slice(&big[5..]);
        frames.read_prefix(3);
        assert_eq!(frames.step(), Step::Hold);
        let backlog = frames.unread();
        assert_eq!(&backlog.bytes[backlog.start..backlog.end], &big);
    }

    #[test]
    fn frames_past_the_total_budget_are_held() {
        let mut frames = Frames::new();
        let mut sent = 0;
        loop {
            frames
                .prefix_buf()
                .copy_from_slice(&PRE_AUTH_FRAME_BYTES.to_be_bytes());
            frames.read_prefix(PREFIX);
            if frames.step() == Step::Hold {
                break;
            }
            frames.gave(PREFIX);
            frames.passed(PRE_AUTH_FRAME_BYTES as usize);
            sent += PRE_AUTH_FRAME_BYTES + PREFIX as u64;
        }
        assert!(sent <= PRE_AUTH_BYTES);
        assert!(sent + PRE_AUTH_FRAME_BYTES + PREFIX as u64 > PRE_AUTH_BYTES);
    }

    #[test]
    fn an_absurd_length_does_not_overflow() {
        let mut frames = Frames::new();
        frames.prefix_buf().copy_from_slice(&u64::MAX.to_be_bytes());
        frames.read_prefix(PREFIX);
        assert_eq!(frames.step(), Step::Hold);
    }

    #[tokio::test]
    async fn held_bytes_are_handed_on_after_the_verdict() {
        let (mut peer, ours) = tokio::io::duplex(1 << 20);
        let (admit, verdict) = oneshot::channel();
        let mut gated = GatedRead::new(ours, verdict, far());
        let small = frame(b"hello");
        let big = frame(&vec![7u8; (PRE_AUTH_FRAME_BYTES + 10) as usize]);
        peer.write_all(&small).await.unwrap();
        peer.write_all(&big).await.unwrap();

        let mut got = vec![0u8; small.len()];
        gated.read_exact(&mut got).await.unwrap();
        assert_eq!(got, small);
        // The big frame's prefix is held: nothing comes before the verdict.
        let mut one = [0u8; 1];
        let held = tokio::time::timeout(Duration::from_millis(50), gated.read(&mut one)).await;
        assert!(held.is_err(), "a held frame was handed on");

        admit.send(()).unwrap();
        let mut got = vec![0u8; big.len()];
        gated.read_exact(&mut got).await.unwrap();
        assert_eq!(got, big);
    }

    #[tokio::test]
    async fn a_dropped_verdict_or_a_deadline_fails_the_read() {
        let (_peer, ours) = tokio::io::duplex(64);
        let (admit, verdict) = oneshot::channel::<()>();
        let mut gated = GatedRead::new(ours, verdict, far());
        drop(admit);
        let err = gated.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);

        let (_peer, ours) = tokio::io::duplex(64);
        let (_admit, verdict) = oneshot::channel::<()>();
        let soon = Box::pin(tokio::time::sleep(Duration::from_millis(10)));
        let mut gated = GatedRead::new(ours, verdict, soon);
        let err = gated.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
