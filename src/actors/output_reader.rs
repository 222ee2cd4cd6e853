//! The one task per process that reads the child's stdout and stderr
//! pipes and sends the bytes to the process actor, with bounded memory in
//! flight, and tells it when the child exits ([`run_io`]).
//!
//! A busy pipe (64 KiB or more waiting when the reader wakes) is read in
//! bursts: the reader reads until the pipe is empty or its block is full,
//! and sends all of it as one chunk, a slice of the block (no copy). A slow
//! writer's bytes are read into a chunk of exactly their size. One message
//! per burst instead of per read, and a pipe grown to 256 KiB once a read
//! finds it full, halve the context switches of a fast writer's capture
//! (docs/performance.md).
//!
//! A reader that finds the pipe empty and must wait for the next bytes
//! gives back a block that only it holds: a child that printed a burst and
//! went quiet keeps no burst-sized buffer in procward beyond the output it
//! captured.
//!
//! A reader ends at end of file, or when its process actor says the drain
//! is over (the drain grace passed, or the handle is being killed after
//! its child exited, while some descendant still holds the pipe). Then it
//! first reads what the pipe already holds, without waiting: the drain
//! grace stops the wait for descendants, never throws away bytes already
//! written.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use ractor::ActorRef;
use tokio::net::unix::pipe;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, oneshot};

use crate::messages::{Event, OutputStream, ProcessMsg};

/// The pipe buffer Linux gives a new pipe.
const DEFAULT_PIPE_SIZE: usize = 64 * 1024;
/// The buffer a pipe gets once one read has found it full: the writer
/// outruns the reader, and a larger buffer lets it write on while the
/// reader hands what it read to the actor (a quarter of the default
/// `/proc/sys/fs/pipe-max-size`).
const BUSY_PIPE_SIZE: usize = 256 * 1024;
/// The block reads go into. Consecutive reads fill one block, and each
/// chunk sent is a slice of it: no copy, and one allocation for many reads.
const BLOCK_SIZE: usize = 256 * 1024;
/// A burst shorter than this is copied out of the block into a chunk of
/// its own, and the block given back: a slow writer's few bytes never pin a
/// block, and every block holds at least one chunk this long.
const MIN_SHARED_CHUNK: usize = BLOCK_SIZE / 4;
/// Room a block needs for another read; below it a new block is taken.
const MIN_READ: usize = 16 * 1024;
/// What a slow writer's read asks for when the pipe said it held nothing.
const SMALL_READ: usize = 512;
/// Chunks a reader may have sent that the actor has not stored yet. When
/// they are all in flight the reader stops reading, the pipe fills and the
/// child blocks on write: memory stays bounded however fast the child is.
const CHUNKS_IN_FLIGHT: usize = 4;
/// The most a final drain reads: the largest pipe buffer Linux allows by
/// default (`/proc/sys/fs/pipe-max-size`, 1 MiB). A writer that keeps
/// writing while the drain runs cannot make it last for ever.
const FINAL_DRAIN_MAX: usize = 1024 * 1024;

/// How one burst of reads ended.
enum Burst {
    /// The pipe is empty for now, or the block is full.
    Paused,
    /// End of file, or a read failed: capture of this stream ends.
    Ended,
}

/// One process's I/O task: reads its stdout and stderr pipes and watches
/// for its exit, until both pipes are closed and the exit seen.
///
/// Each pipe's chunks go to `actor` in order, then
/// [`Event::StreamClosed`] when the pipe reaches end of file, or when
/// `drain_now` fires (or its sender is dropped) and what the pipe holds
/// then has been read. The exit is sent as [`Event::LeaderExited`] (or
/// [`Event::WatchFailed`]). Each chunk is what one burst of reads found in
/// the pipe, up to a block. Between bursts that follow each other a reader
/// holds at most the block its last chunk was sliced from; when it has to
/// wait for the pipe, or after a short burst, it holds nothing.
///
/// One task instead of one per pipe and one for the exit: a running
/// process costs one task's allocation, not three (docs/performance.md).
/// The drain comes first, then the exit, then the two readers, which take
/// turns in first place: a pipe that is ready again at once cannot keep
/// the other one waiting for more than one burst.
///
/// The task is a hand-written future ([`Io`]) that polls readiness with
/// `poll_read_ready` instead of holding a readiness future and a semaphore
/// wait per reader: every running process holds this task, and its size is
/// what a quiet child costs (256 bytes of task instead of 1,536). What only
/// a writing child needs (the chunk permits, the block) is made on its
/// first output, and the final drain, which runs once, is boxed then.
pub(crate) fn run_io<E>(
    exited: E,
    stdout: pipe::Receiver,
    stderr: pipe::Receiver,
    actor: ActorRef<ProcessMsg>,
    drain_now: oneshot::Receiver<()>,
) -> Io<E>
where
    E: Future<Output = std::io::Result<()>> + Unpin,
{
    Io {
        exited: Some(exited),
        readers: [
            Some(Reader::new(stdout, OutputStream::Stdout)),
            Some(Reader::new(stderr, OutputStream::Stderr)),
        ],
        actor,
        drain: Drain::Waiting(drain_now),
        stderr_first: false,
    }
}

/// The I/O task's future ([`run_io`]).
pub(crate) struct Io<E> {
    /// The exit watch, until the exit is seen.
    exited: Option<E>,
    /// stdout's and stderr's readers, each until its stream closes.
    readers: [Option<Reader>; 2],
    actor: ActorRef<ProcessMsg>,
    drain: Drain,
    /// stderr's reader is polled first this time.
    stderr_first: bool,
}

/// Where the end of the drain is.
enum Drain {
    /// Not told yet.
    Waiting(oneshot::Receiver<()>),
    /// Told: the readers read what the pipes hold (boxed: it runs once).
    Running(Pin<Box<dyn Future<Output = bool> + Send>>),
    /// Done, or no reader was left to drain.
    Done,
}

impl<E> Future for Io<E>
where
    E: Future<Output = std::io::Result<()>> + Unpin,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let io = self.get_mut();
        loop {
            let open = io.readers.iter().any(Option::is_some);
            // The drain's end is checked first: a writer that never pauses
            // must not keep its pipe readable, and this loop going, for
            // ever.
            match &mut io.drain {
                Drain::Waiting(drain_now) if open => {
                    if Pin::new(drain_now).poll(cx).is_ready() {
                        let order = if io.stderr_first { [1, 0] } else { [0, 1] };
                        let readers = order.map(|i| io.readers[i].take());
                        let actor = io.actor.clone();
                        io.drain = Drain::Running(Box::pin(async move {
                            for reader in readers.into_iter().flatten() {
                                if !reader.drain(&actor).await {
                                    return false;
                                }
                            }
                            true
                        }));
                        continue;
                    }
                }
                // Nothing else is looked at until the drain is over.
                Drain::Running(drain) => match drain.as_mut().poll(cx) {
                    Poll::Ready(true) => io.drain = Drain::Done,
                    Poll::Ready(false) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                },
                Drain::Waiting(_) | Drain::Done => {}
            }
            if let Some(exited) = &mut io.exited
                && let Poll::Ready(result) = Pin::new(exited).poll(cx)
            {
                io.exited = None;
                let event = match result {
                    Ok(()) => Event::LeaderExited,
                    Err(err) => Event::WatchFailed(err),
                };
                if io.actor.cast(event.into()).is_err() {
                    return Poll::Ready(());
                }
                continue;
            }
            let order = if io.stderr_first { [1, 0] } else { [0, 1] };
            let mut stepped = false;
            for (place, i) in order.into_iter().enumerate() {
                let Some(reader) = &mut io.readers[i] else {
                    continue;
                };
                if let Poll::Ready(step) = reader.poll_step(cx, &io.actor) {
                    if !went_on(&mut io.readers[i], step, &io.actor) {
                        return Poll::Ready(());
                    }
                    if place == 0 {
                        io.stderr_first = !io.stderr_first;
                    }
                    stepped = true;
                    break;
                }
            }
            if stepped {
                continue;
            }
            if io.exited.is_none() && io.readers.iter().all(Option::is_none) {
                return Poll::Ready(());
            }
            return Poll::Pending;
        }
    }
}

/// What one step of a reader came to.
enum Step {
    /// A burst was read (or nothing was there); the pipe stays open.
    Going,
    /// End of file, or a read failed: capture of this stream ends.
    Ended,
    /// The actor is gone: nobody to send to.
    ActorGone,
}

/// Carries out `step` of the reader in `slot`: at the end of its stream
/// the reader goes and the actor is told. `false` if the actor is gone.
fn went_on(slot: &mut Option<Reader>, step: Step, actor: &ActorRef<ProcessMsg>) -> bool {
    match step {
        Step::Going => true,
        Step::Ended => {
            if let Some(reader) = slot.take() {
                let _ = actor.cast(Event::StreamClosed(reader.stream).into());
            }
            true
        }
        Step::ActorGone => false,
    }
}

/// The reader of one pipe.
struct Reader {
    pipe: pipe::Receiver,
    stream: OutputStream,
    /// What a pipe that has been written to needs; made on its first
    /// readiness, so a pipe never written to costs only its registration.
    busy: Option<Box<Busy>>,
}

/// The part of a reader a writing child needs.
struct Busy {
    /// Chunks this reader may have in flight: the actor's store of each
    /// gives its permit back.
    permits: Arc<Semaphore>,
    /// The wait for a permit, when all were in flight.
    acquiring: Option<Pin<Box<dyn Future<Output = Option<OwnedSemaphorePermit>> + Send>>>,
    /// The block bursts are read into, while bursts follow each other.
    block: BytesMut,
    /// The pipe was grown to [`BUSY_PIPE_SIZE`].
    grown: bool,
}

impl Busy {
    fn new() -> Self {
        Busy {
            permits: Arc::new(Semaphore::new(CHUNKS_IN_FLIGHT)),
            acquiring: None,
            block: BytesMut::new(),
            grown: false,
        }
    }

    /// A chunk permit, or the wait for one; `None` if the permits are
    /// closed (they never are).
    fn poll_permit(&mut self, cx: &mut Context<'_>) -> Poll<Option<OwnedSemaphorePermit>> {
        let acquiring = match &mut self.acquiring {
            Some(acquiring) => acquiring,
            None => match self.permits.clone().try_acquire_owned() {
                Ok(permit) => return Poll::Ready(Some(permit)),
                Err(TryAcquireError::Closed) => return Poll::Ready(None),
                Err(TryAcquireError::NoPermits) => {
                    let permits = self.permits.clone();
                    self.acquiring
                        .insert(Box::pin(async move { permits.acquire_owned().await.ok() }))
                }
            },
        };
        let permit = std::task::ready!(acquiring.as_mut().poll(cx));
        self.acquiring = None;
        Poll::Ready(permit)
    }
}

impl Reader {
    fn new(pipe: pipe::Receiver, stream: OutputStream) -> Self {
        Reader {
            pipe,
            stream,
            busy: None,
        }
    }

    /// Waits for the pipe and for a chunk permit, then reads one burst and
    /// sends it. Cancel safe: it reads only once both are there, and
    /// keeps a permit wait it started for the next poll.
    fn poll_step(&mut self, cx: &mut Context<'_>, actor: &ActorRef<ProcessMsg>) -> Poll<Step> {
        let ready = match self.pipe.poll_read_ready(cx) {
            Poll::Ready(ready) => ready,
            Poll::Pending => {
                // The pipe is empty: the writer paused. The block goes
                // back before the wait (the chunks sliced from it keep
                // what they need of it), so a quiet child costs no block.
                if let Some(busy) = &mut self.busy {
                    busy.block = BytesMut::new();
                }
                return Poll::Pending;
            }
        };
        if let Err(err) = ready {
            tracing::warn!(stream = self.stream.as_str(), %err, "waiting on the pipe failed; capture ends");
            return Poll::Ready(Step::Ended);
        }
        let busy = self.busy.get_or_insert_with(|| Box::new(Busy::new()));
        let Some(permit) = std::task::ready!(busy.poll_permit(cx)) else {
            return Poll::Ready(Step::Ended);
        };
        let (pipe, stream) = (&self.pipe, self.stream);
        let (burst, chunk) = if busy.block.capacity() - busy.block.len() >= MIN_READ {
            read_into_block(pipe, stream, &mut busy.block, &mut busy.grown)
        } else {
            // No block with room: ask the pipe how much it holds, so a slow
            // writer's bytes get a chunk of their own size and no block.
            let held = rustix::io::ioctl_fionread(pipe).map_or(0, |n| n as usize);
            busy.block = BytesMut::new();
            if held >= MIN_SHARED_CHUNK {
                busy.block = BytesMut::with_capacity(BLOCK_SIZE);
                read_into_block(pipe, stream, &mut busy.block, &mut busy.grown)
            } else {
                read_small(pipe, stream, held, &mut busy.grown)
            }
        };
        if let Some(chunk) = chunk
            && !send(actor, stream, chunk, permit)
        {
            return Poll::Ready(Step::ActorGone);
        }
        Poll::Ready(match burst {
            Burst::Paused => Step::Going,
            Burst::Ended => Step::Ended,
        })
    }

    /// The drain is over: reads what the pipe holds now, without waiting,
    /// sends it, and tells the actor the stream is closed. `false` if the
    /// actor is gone.
    async fn drain(self, actor: &ActorRef<ProcessMsg>) -> bool {
        let Reader { pipe, stream, busy } = self;
        // Chunks still in flight count against the drain's too.
        let permits = match busy {
            Some(busy) => busy.permits,
            None => Arc::new(Semaphore::new(CHUNKS_IN_FLIGHT)),
        };
        let mut left = FINAL_DRAIN_MAX;
        while left > 0 {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let mut buf = BytesMut::zeroed(DEFAULT_PIPE_SIZE.min(left));
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
            buf.truncate(n);
            // A nearly full buffer is kept as is; a small read is copied
            // out so a few bytes never pin a whole buffer.
            let chunk = if n >= DEFAULT_PIPE_SIZE * 3 / 4 {
                buf.freeze()
            } else {
                Bytes::copy_from_slice(&buf)
            };
            if !send(actor, stream, chunk, permit) {
                return false;
            }
        }
        actor.cast(Event::StreamClosed(stream).into()).is_ok()
    }
}

/// What a burst read into `block`, as a chunk. A burst of at least
/// [`MIN_SHARED_CHUNK`] is sliced off the block, which keeps its spare room
/// for the next burst; a shorter one is copied out and the block given
/// back, so a few bytes never pin a block.
fn take_chunk(block: &mut BytesMut) -> Bytes {
    if block.len() >= MIN_SHARED_CHUNK {
        block.split().freeze()
    } else {
        let chunk = Bytes::copy_from_slice(block);
        *block = BytesMut::new();
        chunk
    }
}

/// A burst into `block`, and what it read as a chunk ([`take_chunk`]).
/// Nothing read leaves the reader holding no block.
fn read_into_block(
    pipe: &pipe::Receiver,
    stream: OutputStream,
    block: &mut BytesMut,
    grown: &mut bool,
) -> (Burst, Option<Bytes>) {
    let burst = read_burst(pipe, stream, block, grown, MIN_READ);
    if block.is_empty() {
        *block = BytesMut::new();
        return (burst, None);
    }
    (burst, Some(take_chunk(block)))
}

/// A burst of a pipe that held `held` bytes, under [`MIN_SHARED_CHUNK`],
/// into a buffer of that size: the chunk owns exactly its bytes.
fn read_small(
    pipe: &pipe::Receiver,
    stream: OutputStream,
    held: usize,
    grown: &mut bool,
) -> (Burst, Option<Bytes>) {
    // Nothing held: end of file, or bytes that came after the count.
    let mut buf = BytesMut::with_capacity(if held > 0 { held } else { SMALL_READ });
    let burst = read_burst(pipe, stream, &mut buf, grown, 1);
    let chunk = match buf.len() {
        0 => None,
        n if n == buf.capacity() => Some(buf.freeze()),
        _ => Some(Bytes::copy_from_slice(&buf)),
    };
    (burst, chunk)
}

/// Reads into `buf` until the pipe is empty, `buf` has less than
/// `min_room` spare, or the stream ends. The first read that finds the
/// pipe full grows the pipe to [`BUSY_PIPE_SIZE`] (once; a refusal, such
/// as the user's pipe quota, leaves it as it was).
fn read_burst(
    pipe: &pipe::Receiver,
    stream: OutputStream,
    buf: &mut BytesMut,
    grown: &mut bool,
    min_room: usize,
) -> Burst {
    // At least one byte of room: a read into none would look like end of
    // file.
    while buf.capacity() - buf.len() >= min_room.max(1) {
        match pipe.try_read_buf(buf) {
            Ok(0) => return Burst::Ended,
            Ok(n) => {
                if n >= DEFAULT_PIPE_SIZE && !*grown {
                    *grown = true;
                    let _ = rustix::pipe::fcntl_setpipe_size(pipe, BUSY_PIPE_SIZE);
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return Burst::Paused,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => {
                tracing::warn!(stream = stream.as_str(), %err, "reading the pipe failed; capture ends");
                return Burst::Ended;
            }
        }
    }
    Burst::Paused
}

/// Sends one chunk; `false` if the actor is gone.
fn send(
    actor: &ActorRef<ProcessMsg>,
    stream: OutputStream,
    chunk: Bytes,
    permit: OwnedSemaphorePermit,
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

    /// Stands in for the process actor: joins the bytes of one stream and
    /// reports them when the stream closes.
    struct Collector;

    impl Actor for Collector {
        type Msg = ProcessMsg;
        type State = (Vec<u8>, Option<oneshot::Sender<Vec<u8>>>);
        type Arguments = oneshot::Sender<Vec<u8>>;

        async fn pre_start(
            &self,
            _: ActorRef<ProcessMsg>,
            done: oneshot::Sender<Vec<u8>>,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok((Vec::new(), Some(done)))
        }

        async fn handle(
            &self,
            _: ActorRef<ProcessMsg>,
            message: ProcessMsg,
            state: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            match message {
                ProcessMsg::Event(ProcessEvent(Event::Output { chunk, .. })) => {
                    state.0.extend_from_slice(&chunk)
                }
                ProcessMsg::Event(ProcessEvent(Event::StreamClosed(_))) => {
                    if let Some(done) = state.1.take() {
                        let _ = done.send(std::mem::take(&mut state.0));
                    }
                }
                _ => {}
            }
            Ok(())
        }
    }

    /// Reads one pipe as [`run_io`] does, until end of file or until
    /// `drain_now` fires and the pipe's bytes are read.
    async fn read_stream(
        pipe: pipe::Receiver,
        stream: OutputStream,
        actor: ActorRef<ProcessMsg>,
        mut drain_now: oneshot::Receiver<()>,
    ) {
        let mut reader = Some(Reader::new(pipe, stream));
        loop {
            tokio::select! {
                biased;
                _ = &mut drain_now => {
                    if let Some(reader) = reader.take() {
                        reader.drain(&actor).await;
                    }
                    return;
                }
                step = step(&mut reader, &actor) => {
                    if !went_on(&mut reader, step, &actor) || reader.is_none() {
                        return;
                    }
                }
            }
        }
    }

    /// One step of `reader`, if it is still open.
    async fn step(reader: &mut Option<Reader>, actor: &ActorRef<ProcessMsg>) -> Step {
        match reader {
            Some(reader) => std::future::poll_fn(|cx| reader.poll_step(cx, actor)).await,
            None => std::future::pending().await,
        }
    }

    /// Runs a reader on `read_end` into a collector until the stream closes
    /// and returns what it collected.
    async fn collect(read_end: OwnedFd, drain_now: bool) -> Vec<u8> {
        let pipe = pipe::Receiver::from_owned_fd(read_end).expect("registering the pipe");
        let (done, collected) = oneshot::channel();
        let (actor, handle) = Actor::spawn(None, Collector, done)
            .await
            .expect("collector");
        let (drain_tx, drain_rx) = oneshot::channel();
        let _drain_tx = if drain_now {
            let _ = drain_tx.send(());
            None
        } else {
            Some(drain_tx)
        };
        read_stream(pipe, OutputStream::Stdout, actor.clone(), drain_rx).await;
        let collected = collected.await.expect("the stream closed");
        actor.stop(None);
        let _ = handle.await;
        collected
    }

    fn write_all(fd: &OwnedFd, mut data: &[u8]) {
        while !data.is_empty() {
            let n = rustix::io::write(fd, data).expect("writing the pipe");
            data = &data[n..];
        }
    }

    /// Reads `written` bytes put in a pipe whose write end stays open (a
    /// descendant holding it), with the drain already over when the reader
    /// starts: what the pipe holds must still all be read.
    async fn drain_of(written: usize) -> usize {
        let (read_end, write_end): (OwnedFd, OwnedFd) = rustix::pipe::pipe().expect("a pipe");
        rustix::pipe::fcntl_setpipe_size(&write_end, 1 << 20).expect("a 1 MiB pipe");
        write_all(&write_end, &vec![b'x'; written]);
        let total = collect(read_end, true).await.len();
        drop(write_end);
        total
    }

    /// Stands in for the process actor of both streams: records which
    /// stream each chunk came from, in order, until both streams close.
    struct OrderCollector;

    impl Actor for OrderCollector {
        type Msg = ProcessMsg;
        type State = (
            Vec<OutputStream>,
            u8,
            Option<oneshot::Sender<Vec<OutputStream>>>,
        );
        type Arguments = oneshot::Sender<Vec<OutputStream>>;

        async fn pre_start(
            &self,
            _: ActorRef<ProcessMsg>,
            done: oneshot::Sender<Vec<OutputStream>>,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok((Vec::new(), 0, Some(done)))
        }

        async fn handle(
            &self,
            _: ActorRef<ProcessMsg>,
            message: ProcessMsg,
            state: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            match message {
                ProcessMsg::Event(ProcessEvent(Event::Output { stream, .. })) => {
                    state.0.push(stream)
                }
                ProcessMsg::Event(ProcessEvent(Event::StreamClosed(_))) => {
                    state.1 += 1;
                    if state.1 == 2
                        && let Some(done) = state.2.take()
                    {
                        let _ = done.send(std::mem::take(&mut state.0));
                    }
                }
                _ => {}
            }
            Ok(())
        }
    }

    /// stdout holds 1 MiB (four blocks, ready after every burst) and stderr
    /// three bytes: stderr's chunk comes second, not after the 4 stdout
    /// chunks a reader may have in flight. One thread, so the collector
    /// runs only when the I/O task waits.
    #[tokio::test(flavor = "current_thread")]
    async fn the_two_streams_take_turns() {
        let (out_read, out_write): (OwnedFd, OwnedFd) = rustix::pipe::pipe().expect("a pipe");
        let (err_read, err_write): (OwnedFd, OwnedFd) = rustix::pipe::pipe().expect("a pipe");
        rustix::pipe::fcntl_setpipe_size(&out_write, 1 << 20).expect("a 1 MiB pipe");
        write_all(&out_write, &vec![b'o'; 1 << 20]);
        write_all(&err_write, b"err");
        drop((out_write, err_write));
        let (done, order) = oneshot::channel();
        let (actor, handle) = Actor::spawn(None, OrderCollector, done)
            .await
            .expect("collector");
        let (_drain_tx, drain_rx) = oneshot::channel();
        run_io(
            std::future::ready(Ok(())),
            pipe::Receiver::from_owned_fd(out_read).expect("registering stdout"),
            pipe::Receiver::from_owned_fd(err_read).expect("registering stderr"),
            actor.clone(),
            drain_rx,
        )
        .await;
        let order = order.await.expect("both streams closed");
        actor.stop(None);
        let _ = handle.await;
        let stderr_at = order.iter().position(|s| *s == OutputStream::Stderr);
        assert_eq!(stderr_at, Some(1), "chunks in order: {order:?}");
        assert!(order.iter().filter(|s| **s == OutputStream::Stdout).count() >= 4);
    }

    #[tokio::test]
    async fn a_final_drain_reads_what_the_pipe_holds() {
        assert_eq!(drain_of(60_000).await, 60_000);
        assert_eq!(drain_of((1 << 20) - 1).await, (1 << 20) - 1);
        assert_eq!(drain_of(0).await, 0);
    }

    /// Every running process holds its I/O task for as long as it runs:
    /// its future must stay a few pointers (a 256-byte task cell with it;
    /// 1,536 bytes when it held a readiness future and a permit wait per
    /// reader).
    #[test]
    fn the_io_task_stays_small() {
        let size = std::mem::size_of::<Io<crate::os::child::ExitWatch>>();
        assert!(size <= 160, "the I/O task's future is {size} bytes");
    }

    #[test]
    fn a_short_burst_is_copied_out_and_gives_the_block_back() {
        let mut block = BytesMut::with_capacity(BLOCK_SIZE);
        block.extend_from_slice(b"hello");
        let chunk = take_chunk(&mut block);
        assert_eq!(&chunk[..], b"hello");
        assert_eq!(block.capacity(), 0, "the block is given back");
    }

    #[test]
    fn a_long_burst_is_sliced_off_and_the_block_keeps_its_room() {
        let mut block = BytesMut::with_capacity(BLOCK_SIZE);
        block.extend_from_slice(&[7; MIN_SHARED_CHUNK]);
        let start = block.as_ptr();
        let chunk = take_chunk(&mut block);
        assert_eq!(chunk.len(), MIN_SHARED_CHUNK);
        assert_eq!(chunk.as_ptr(), start, "sliced, not copied");
        assert!(block.is_empty());
        assert_eq!(block.capacity(), BLOCK_SIZE - MIN_SHARED_CHUNK);
    }

    #[tokio::test]
    async fn a_burst_that_reads_nothing_leaves_no_block_held() {
        let (read_end, write_end): (OwnedFd, OwnedFd) = rustix::pipe::pipe().expect("a pipe");
        let pipe = pipe::Receiver::from_owned_fd(read_end).expect("registering the pipe");
        let mut block = BytesMut::with_capacity(BLOCK_SIZE);
        let mut grown = false;
        let (burst, chunk) = read_into_block(&pipe, OutputStream::Stdout, &mut block, &mut grown);
        assert!(matches!(burst, Burst::Paused));
        assert!(chunk.is_none());
        assert_eq!(block.capacity(), 0);
        write_all(&write_end, b"abc");
        pipe.readable().await.expect("the pipe turns readable");
        let (burst, chunk) = read_small(&pipe, OutputStream::Stdout, 3, &mut grown);
        assert!(matches!(burst, Burst::Paused));
        assert_eq!(chunk.as_deref(), Some(&b"abc"[..]));
        assert!(!grown);
    }

    /// A pipe found full, then a writer in writes of every size from one
    /// byte to twice a block: every byte arrives once and in order however
    /// the bursts split it, and the pipe has grown.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fast_writer_arrives_whole_and_in_order_and_grows_the_pipe() {
        let (read_end, write_end): (OwnedFd, OwnedFd) = rustix::pipe::pipe().expect("a pipe");
        let data: Vec<u8> = (0..24 * 1024 * 1024_usize)
            .map(|i| (i % 251) as u8)
            .collect();
        let expected = data.clone();
        // The pipe is full before the reader starts, so its first read
        // finds it full whatever the scheduling.
        write_all(&write_end, &data[..DEFAULT_PIPE_SIZE]);
        let writer = std::thread::spawn(move || {
            let mut at = DEFAULT_PIPE_SIZE;
            let mut size = 1;
            while at < data.len() {
                let end = (at + size).min(data.len());
                write_all(&write_end, &data[at..end]);
                at = end;
                size = size * 3 % (2 * BLOCK_SIZE) + 1;
            }
            rustix::pipe::fcntl_getpipe_size(&write_end).expect("the pipe's size")
        });
        let collected = collect(read_end, false).await;
        let pipe_size = writer.join().expect("the writer");
        assert!(
            collected == expected,
            "the bytes differ from what was written"
        );
        assert_eq!(pipe_size, BUSY_PIPE_SIZE);
    }
}
