//! Bounded capture of one output stream: keeps the head and the tail of what
//! a child writes, and hands out cheap `Bytes` views.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::messages::{Kept, OutputStream, ReadChunk, ReadRequest, StreamOutput};

/// One stream's captured bytes, never more than `cap` of them.
///
/// While the child has written at most `cap` bytes, everything is kept. Past
/// that, the first `cap / 2` bytes (the head) and the most recent
/// `cap - cap / 2` bytes (the tail) are kept and the middle is dropped.
#[derive(Debug)]
pub(crate) struct Capture {
    cap: usize,
    /// The first `cap / 2` bytes written, copied in as they come.
    head: BytesMut,
    /// Everything after the head that is still kept, as received.
    tail: VecDeque<Bytes>,
    tail_len: usize,
    total: u64,
    /// The last view handed out; `None` once more bytes arrived.
    view: Option<Bytes>,
}

impl Capture {
    pub(crate) fn new(cap: usize) -> Self {
        Capture {
            cap,
            head: BytesMut::new(),
            tail: VecDeque::new(),
            tail_len: 0,
            total: 0,
            view: None,
        }
    }

    fn head_cap(&self) -> usize {
        self.cap / 2
    }

    fn tail_cap(&self) -> usize {
        self.cap - self.head_cap()
    }

    /// Appends a chunk as the child wrote it.
    pub(crate) fn push(&mut self, mut chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.total += chunk.len() as u64;
        self.view = None;
        let head_room = self.head_cap() - self.head.len();
        if head_room > 0 {
            let take = head_room.min(chunk.len());
            self.head.extend_from_slice(&chunk.split_to(take));
        }
        if chunk.is_empty() {
            return;
        }
        self.tail_len += chunk.len();
        self.tail.push_back(chunk);
        let limit = self.tail_cap();
        while self.tail_len > limit {
            let excess = self.tail_len - limit;
            let Some(front) = self.tail.front_mut() else {
                break;
            };
            if front.len() <= excess {
                self.tail_len -= front.len();
                self.tail.pop_front();
            } else {
                // Zero-copy: only the slice's start moves.
                let _ = front.split_to(excess);
                self.tail_len -= excess;
            }
        }
    }

    /// Bytes written in all.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Whether bytes were dropped.
    pub(crate) fn truncated(&self) -> bool {
        self.total > (self.head.len() + self.tail_len) as u64
    }

    /// The kept bytes, head then tail. Joining them copies once; the result
    /// is reused until more bytes arrive, so repeated views are free.
    pub(crate) fn view(&mut self) -> StreamOutput {
        let bytes = match &self.view {
            Some(bytes) => bytes.clone(),
            None => {
                let mut joined = BytesMut::with_capacity(self.head.len() + self.tail_len);
                joined.extend_from_slice(&self.head);
                for chunk in &self.tail {
                    joined.extend_from_slice(chunk);
                }
                let bytes = joined.freeze();
                self.view = Some(bytes.clone());
                bytes
            }
        };
        let truncated = self.truncated();
        StreamOutput {
            bytes,
            total_bytes: self.total,
            truncated,
            dropped_at: truncated.then_some(self.head.len()),
        }
    }

    fn kept(&self) -> Kept {
        Kept {
            head_end: self.head.len() as u64,
            tail_start: self.total - self.tail_len as u64,
            total: self.total,
        }
    }

    /// Reads from a stream offset on; see [`ReadRequest`]. Copies only what
    /// it returns, and nothing when the range lies in one received chunk.
    /// `None` when `offset` is past what was written.
    pub(crate) fn read(&self, request: &ReadRequest, complete: bool) -> Option<ReadChunk> {
        let kept = self.kept();
        let (start, end, dropped) = kept.plan(request.offset, request.max_bytes)?;
        Some(ReadChunk {
            stream: request.stream,
            offset: start,
            bytes: self.slice(kept, start, end),
            next_offset: end,
            dropped,
            total_bytes: self.total,
            complete,
        })
    }

    /// The kept bytes of stream range `[start, end)`, which `Kept::plan`
    /// guarantees lies in the head or in the tail, not across the gap.
    fn slice(&self, kept: Kept, start: u64, end: u64) -> Bytes {
        let len = (end - start) as usize;
        if len == 0 {
            return Bytes::new();
        }
        let mut at = kept.index(start);
        let mut out = BytesMut::new();
        if at < self.head.len() {
            let take = len.min(self.head.len() - at);
            out.extend_from_slice(&self.head[at..at + take]);
            at = 0;
        } else {
            at -= self.head.len();
        }
        for chunk in &self.tail {
            if out.len() == len {
                break;
            }
            if at >= chunk.len() {
                at -= chunk.len();
                continue;
            }
            let take = (len - out.len()).min(chunk.len() - at);
            if out.is_empty() && take == len {
                return chunk.slice(at..at + take);
            }
            out.extend_from_slice(&chunk[at..at + take]);
            at = 0;
        }
        out.freeze()
    }
}

/// Both streams of one process, captured: nothing is allocated for them
/// until the first byte arrives, so a silent process pays for no capture.
#[derive(Debug)]
pub(crate) struct Captures {
    cap: usize,
    /// stdout and stderr, once either has written.
    streams: Option<Box<[Capture; 2]>>,
}

fn index(stream: OutputStream) -> usize {
    match stream {
        OutputStream::Stdout => 0,
        OutputStream::Stderr => 1,
    }
}

impl Captures {
    /// Captures of at most `cap` bytes per stream.
    pub(crate) fn new(cap: usize) -> Self {
        Captures { cap, streams: None }
    }

    /// Appends a chunk to `stream`.
    pub(crate) fn push(&mut self, stream: OutputStream, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        let cap = self.cap;
        let streams = self
            .streams
            .get_or_insert_with(|| Box::new([Capture::new(cap), Capture::new(cap)]));
        streams[index(stream)].push(chunk);
    }

    /// Bytes written to `stream` in all.
    pub(crate) fn total(&self, stream: OutputStream) -> u64 {
        self.streams
            .as_ref()
            .map_or(0, |streams| streams[index(stream)].total())
    }

    /// The kept bytes of `stream`; see [`Capture::view`].
    pub(crate) fn view(&mut self, stream: OutputStream) -> StreamOutput {
        match &mut self.streams {
            Some(streams) => streams[index(stream)].view(),
            None => StreamOutput::default(),
        }
    }

    /// Reads `request.stream` from an offset on; see [`Capture::read`].
    pub(crate) fn read(&self, request: &ReadRequest, complete: bool) -> Option<ReadChunk> {
        match &self.streams {
            Some(streams) => streams[index(request.stream)].read(request, complete),
            // Nothing written: what an empty capture answers, without one.
            None => Capture::new(self.cap).read(request, complete),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    fn feed(cap: usize, data: &[u8], chunk: usize) -> StreamOutput {
        let mut capture = Capture::new(cap);
        for piece in data.chunks(chunk) {
            capture.push(Bytes::copy_from_slice(piece));
        }
        capture.view()
    }

    #[test]
    fn keeps_everything_up_to_the_cap() {
        let data = pattern(100);
        for chunk in [1, 7, 100] {
            let out = feed(100, &data, chunk);
            assert_eq!(&out.bytes[..], &data[..]);
            assert!(!out.truncated);
            assert_eq!(out.total_bytes, 100);
        }
    }

    #[test]
    fn keeps_head_and_tail_past_the_cap() {
        let data = pattern(1000);
        for chunk in [1, 3, 64, 999, 1000] {
            for cap in [10, 11, 100, 101] {
                let out = feed(cap, &data, chunk);
                let head = cap / 2;
                let tail = cap - head;
                let mut expected = data[..head].to_vec();
                expected.extend_from_slice(&data[data.len() - tail..]);
                assert_eq!(&out.bytes[..], &expected[..], "cap {cap} chunk {chunk}");
                assert!(out.truncated);
                assert_eq!(out.total_bytes, 1000);
            }
        }
    }

    #[test]
    fn one_byte_over_the_cap_truncates() {
        let out = feed(10, &pattern(11), 4);
        assert!(out.truncated);
        assert_eq!(out.bytes.len(), 10);
    }

    #[test]
    fn views_are_shared_until_new_bytes_arrive() {
        let mut capture = Capture::new(64);
        capture.push(Bytes::from_static(b"abc"));
        let first = capture.view().bytes;
        let second = capture.view().bytes;
        assert_eq!(first.as_ptr(), second.as_ptr());
        capture.push(Bytes::from_static(b"def"));
        assert_eq!(&capture.view().bytes[..], b"abcdef");
        assert_eq!(&first[..], b"abc");
    }

    /// Reads the whole stream back through `read` in steps of `max`.
    fn read_all(capture: &Capture, max: Option<usize>) -> (Vec<u8>, bool) {
        let mut offset = 0;
        let mut out = Vec::new();
        let mut any_dropped = false;
        loop {
            let request = ReadRequest {
                stream: crate::messages::OutputStream::Stdout,
                offset,
                max_bytes: max,
            };
            let chunk = capture.read(&request, false).unwrap();
            assert_eq!(chunk.next_offset, chunk.offset + chunk.bytes.len() as u64);
            any_dropped |= chunk.dropped;
            out.extend_from_slice(&chunk.bytes);
            if chunk.next_offset == capture.total {
                return (out, any_dropped);
            }
            assert!(chunk.next_offset > offset || chunk.dropped);
            offset = chunk.next_offset;
        }
    }

    #[test]
    fn reads_every_byte_once_when_nothing_dropped() {
        let data = pattern(300);
        let mut capture = Capture::new(1000);
        for piece in data.chunks(7) {
            capture.push(Bytes::copy_from_slice(piece));
        }
        for max in [None, Some(1), Some(10), Some(64), Some(1000)] {
            let (read, dropped) = read_all(&capture, max);
            assert_eq!(read, data, "max {max:?}");
            assert!(!dropped);
        }
    }

    #[test]
    fn reads_head_then_skips_to_tail_when_truncated() {
        let data = pattern(1000);
        let mut capture = Capture::new(100);
        for piece in data.chunks(33) {
            capture.push(Bytes::copy_from_slice(piece));
        }
        let (read, dropped) = read_all(&capture, Some(17));
        assert!(dropped);
        assert_eq!(&read[..], &capture.view().bytes[..]);
        // The view's own reader agrees with the capture's.
        let view = capture.view();
        let request = ReadRequest {
            stream: crate::messages::OutputStream::Stdout,
            offset: 60,
            max_bytes: Some(5),
        };
        assert_eq!(
            view.read(&request, true),
            capture.read(&request, true).map(|mut c| {
                c.complete = true;
                c
            })
        );
    }

    #[test]
    fn reading_past_the_end_is_refused() {
        let mut capture = Capture::new(10);
        capture.push(Bytes::from_static(b"abc"));
        let request = ReadRequest {
            stream: crate::messages::OutputStream::Stdout,
            offset: 4,
            max_bytes: None,
        };
        assert!(capture.read(&request, false).is_none());
    }

    #[test]
    fn captures_hold_nothing_until_the_first_byte() {
        let mut captures = Captures::new(64);
        assert!(captures.streams.is_none());
        assert_eq!(captures.view(OutputStream::Stdout), StreamOutput::default());
        let at = |offset| ReadRequest {
            stream: OutputStream::Stdout,
            offset,
            max_bytes: None,
        };
        assert_eq!(captures.read(&at(0), false).map(|c| c.bytes.len()), Some(0));
        assert!(captures.read(&at(1), false).is_none());
        captures.push(OutputStream::Stderr, Bytes::new());
        assert!(
            captures.streams.is_none(),
            "an empty chunk allocates nothing"
        );
        captures.push(OutputStream::Stderr, Bytes::from_static(b"err"));
        assert_eq!(captures.total(OutputStream::Stderr), 3);
        assert_eq!(captures.total(OutputStream::Stdout), 0);
        assert_eq!(&captures.view(OutputStream::Stderr).bytes[..], b"err");
    }

    #[test]
    fn cap_of_one_keeps_only_the_last_byte() {
        let out = feed(1, b"xyz", 1);
        assert_eq!(&out.bytes[..], b"z");
        assert!(out.truncated);
    }
}
