//! The server's stdin and stdout, read and written by the event loop itself
//! where they are pipes.
//!
//! tokio's `Stdin`/`Stdout` run every read and every write on a thread of
//! the blocking pool: two thread hand-offs per request line and two per
//! answer. A host that runs one short process at a time through `serve`
//! (issue 21) pays for each of them. Where a stream is a pipe or FIFO (what
//! every scripting host's subprocess API gives), this module opens a new
//! description of the same pipe through `/proc/self/fd/N`, non-blocking,
//! and hands it to tokio's pipe types, which wait in epoll like a socket.
//!
//! The new description is ours alone, so `O_NONBLOCK` never reaches
//! whoever shares the original one (a shell's terminal, a parent that
//! reads the same pipe). Anything else (a terminal, a file, a socket, a
//! `/proc` without the link) keeps tokio's `Stdin`/`Stdout`.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{FileType, Mode, OFlags, fstat, open};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

/// The server's input: stdin.
pub(crate) type Input = Box<dyn AsyncRead + Unpin + Send>;
/// The server's output: stdout.
pub(crate) type Output = Box<dyn AsyncWrite + Unpin + Send>;

/// Which way the server reads or writes a standard stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Way {
    /// In the event loop, through a non-blocking description of the pipe.
    Pipe,
    /// Through tokio's blocking-pool `Stdin`/`Stdout`.
    BlockingPool,
}

impl fmt::Display for Way {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Way::Pipe => "pipe in the event loop",
            Way::BlockingPool => "blocking pool",
        })
    }
}

/// stdin, and how it is read. Must run inside the runtime (the pipe is
/// registered with its reactor).
pub(crate) fn input() -> (Input, Way) {
    let stdin = std::io::stdin();
    match reopen(stdin.as_fd(), 0, OFlags::RDONLY).and_then(pipe::Receiver::from_owned_fd) {
        Ok(pipe) => (Box::new(pipe), Way::Pipe),
        Err(_) => (Box::new(tokio::io::stdin()), Way::BlockingPool),
    }
}

/// stdout, and how it is written. Must run inside the runtime.
pub(crate) fn output() -> (Output, Way) {
    let stdout = std::io::stdout();
    match reopen(stdout.as_fd(), 1, OFlags::WRONLY).and_then(pipe::Sender::from_owned_fd) {
        Ok(pipe) => (Box::new(pipe), Way::Pipe),
        Err(_) => (Box::new(tokio::io::stdout()), Way::BlockingPool),
    }
}

/// A new non-blocking description of the pipe behind `fd`, or an error if
/// `fd` is not a pipe or cannot be opened again.
fn reopen(fd: BorrowedFd<'_>, number: i32, access: OFlags) -> std::io::Result<OwnedFd> {
    let stat = fstat(fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::Fifo {
        return Err(std::io::Error::other("not a pipe"));
    }
    // Blocking, but once, before the server reads its first request; the
    // open of a pipe's `/proc` link does not wait for a peer.
    let fd = open(
        format!("/proc/self/fd/{number}"),
        access | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(fd)
}
