//! Escapee hunting: finding and killing descendants that left their
//! process group (`setsid`, `setpgid`), by a token in their environment.
//!
//! In this mode every spawn gets `PROCWARD_TOKEN=<token>` in its
//! environment, and descendants inherit it unless they clear their
//! environment. When the handle ends, every process of ours whose
//! environment carries the token is killed.
//!
//! Soundness: a process is found by reading `/proc/<pid>/environ`, then
//! pinned with a pidfd, then its environment is read again: if the pid was
//! reused between the two reads, the new process lacks the token and is
//! left alone. The signal goes through the pidfd, so it reaches exactly the
//! pinned process. The spawned child itself (the group leader) is skipped:
//! only its process actor reaps it.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::child::pidfd_exited;
use rustix::process::{
    Pid, PidfdFlags, Signal, WaitId, WaitIdOptions, getpid, pidfd_open, pidfd_send_signal, waitid,
};

/// The environment variable that carries the token.
pub(crate) const TOKEN_VAR: &str = "PROCWARD_TOKEN";

static NEXT_REGISTRY: AtomicU64 = AtomicU64::new(1);

/// A token prefix unique to one registry of this OS process:
/// `<pid>-<registry number>-`. Its spawns' tokens add their own number.
pub(crate) fn new_token_prefix() -> String {
    let me = getpid().as_raw_nonzero().get();
    format!("{me}-{}-", NEXT_REGISTRY.fetch_add(1, Ordering::Relaxed))
}

fn carries(pid: i32, entry: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|environ| environ.split(|&b| b == 0).any(|var| var == entry))
        .unwrap_or(false)
}

/// Kills every process (but `leader`) whose environment carries `token`,
/// waits for each to die, and reaps those that are our children. Returns
/// how many it killed.
pub(crate) async fn kill_escapees(token: &str, leader: u32, deadline: Duration) -> usize {
    let entry = format!("{TOKEN_VAR}={token}").into_bytes();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let candidates: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid: &i32| i64::from(pid) != i64::from(leader) && carries(pid, &entry))
        .collect();
    let mut killed = 0;
    for pid in candidates {
        let Some(raw) = Pid::from_raw(pid) else {
            continue;
        };
        let Ok(pidfd) = pidfd_open(raw, PidfdFlags::empty()) else {
            continue;
        };
        if !carries(pid, &entry) {
            continue;
        }
        if pidfd_send_signal(&pidfd, Signal::KILL).is_err() {
            continue;
        }
        killed += 1;
        tracing::info!(
            pid,
            token,
            "killed a descendant that had left its process group"
        );
        if let Err(err) = reap_if_ours(pidfd, deadline).await {
            tracing::debug!(pid, %err, "could not wait for a killed escapee");
        }
    }
    killed
}

/// Waits for the pinned process to die, then reaps it if it is our child
/// (it is not when its own parent is still alive to reap it).
async fn reap_if_ours(pidfd: OwnedFd, deadline: Duration) -> io::Result<()> {
    let exited = pidfd_exited(pidfd.try_clone()?)?;
    match tokio::time::timeout(deadline, exited).await {
        Ok(result) => result?,
        Err(_) => return Err(io::Error::other("it did not die before the deadline")),
    }
    match waitid(
        WaitId::PidFd(pidfd.as_fd()),
        WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
    ) {
        Ok(_) | Err(rustix::io::Errno::CHILD) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}
