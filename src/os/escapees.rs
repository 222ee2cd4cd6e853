//! Escapee tokens: finding descendants that left their process group
//! (`setsid`, `setpgid`) by a token in their environment, and killing one
//! without ever signalling a reused pid.
//!
//! In escapee-hunting mode every spawn gets `PROCWARD_TOKEN=<token>` in its
//! environment, and descendants inherit it unless they clear their
//! environment. When the handle ends, the [OS worker](super::worker) kills
//! every process whose environment carries the token.
//!
//! Soundness: a process is found by reading `/proc/<pid>/environ`, then
//! pinned with a pidfd, then its environment is read again: if the pid was
//! reused between the two reads, the new process lacks the token and is
//! left alone. The signal goes through the pidfd, so it reaches exactly the
//! pinned process.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::process::{Pid, PidfdFlags, Signal, getpid, pidfd_open, pidfd_send_signal};

use super::procfs;

/// The environment variable that carries the token.
pub(crate) const TOKEN_VAR: &str = "PROCWARD_TOKEN";

static NEXT_REGISTRY: AtomicU64 = AtomicU64::new(1);

/// A token prefix unique to one registry of this OS process:
/// `<pid>-<registry number>-`. Its spawns' tokens add their own number.
pub(crate) fn new_token_prefix() -> String {
    let me = getpid().as_raw_nonzero().get();
    format!("{me}-{}-", NEXT_REGISTRY.fetch_add(1, Ordering::Relaxed))
}

/// Pins `pid` with a pidfd, checks that it still carries `token`, and
/// SIGKILLs it through the pidfd. Returns the pidfd of the killed process,
/// or `None` if it was gone, had been replaced, or could not be signalled.
/// Blocking (reads `/proc`): for the OS worker's thread only.
pub(crate) fn kill_pinned(pid: i32, token: &str, buf: &mut Vec<u8>) -> Option<OwnedFd> {
    let pidfd = pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()?;
    if procfs::env_var(pid, TOKEN_VAR, buf).as_deref() != Some(token) {
        return None;
    }
    pidfd_send_signal(&pidfd, Signal::KILL).ok()?;
    tracing::info!(
        pid,
        token,
        "killed a descendant that had left its process group"
    );
    Some(pidfd)
}
