//! Applying [`Limits`] in the child, between fork and exec.

use std::io;
use std::os::unix::process::CommandExt;

use rustix::fs::Mode;
use rustix::process::{Resource, Rlimit, setpriority_process, setrlimit, setsid, umask};

use crate::messages::Limits;

/// What the child does with its [`Limits`] between fork and exec, with
/// every value copied in: running it allocates nothing and takes no lock.
#[derive(Debug, Clone, Copy)]
pub(super) struct InChild {
    rlimits: [(Resource, Option<u64>); 5],
    nice: Option<i32>,
    mask: Option<u32>,
    new_session: bool,
}

impl InChild {
    pub(super) fn new(limits: Limits) -> Self {
        InChild {
            rlimits: [
                (Resource::Cpu, limits.cpu_seconds),
                (Resource::As, limits.address_space_bytes),
                (Resource::Nofile, limits.open_files),
                (Resource::Nproc, limits.max_processes),
                (Resource::Core, limits.core_bytes),
            ],
            nice: limits.nice,
            mask: limits.umask,
            new_session: limits.new_session,
        }
    }

    /// Whether the child makes a session (and so a group) of its own.
    pub(super) fn new_session(&self) -> bool {
        self.new_session
    }

    /// Runs in the forked child, where only async-signal-safe calls are
    /// allowed: every call below is a raw system call through rustix's
    /// linux_raw backend, on values copied in (no allocation, no lock);
    /// errors become `io::Error`s of the raw-errno kind, which do not
    /// allocate either. With `new_session`, the child calls `setsid`
    /// (which also makes it the leader of a new process group).
    pub(super) fn run(&self) -> io::Result<()> {
        if self.new_session {
            setsid().map_err(io::Error::from)?;
        }
        for (resource, limit) in self.rlimits {
            if let Some(limit) = limit {
                let both = Rlimit {
                    current: Some(limit),
                    maximum: Some(limit),
                };
                setrlimit(resource, both).map_err(io::Error::from)?;
            }
        }
        if let Some(nice) = self.nice {
            setpriority_process(None, nice).map_err(io::Error::from)?;
        }
        if let Some(mask) = self.mask {
            umask(Mode::from_bits_truncate(mask));
        }
        Ok(())
    }
}

/// Makes the child apply `limits` before it executes the program. With
/// `new_session`, the child calls `setsid` (which also makes it the leader
/// of a new process group); otherwise the caller must have asked for a new
/// process group.
pub(crate) fn apply(cmd: &mut std::process::Command, limits: Limits) {
    if limits.is_empty() {
        return;
    }
    let steps = InChild::new(limits);
    let in_child = move || steps.run();
    // SAFETY: `pre_exec` requires the closure to be safe to run between
    // fork and exec: it only makes async-signal-safe system calls (see
    // `InChild::run`), touches no memory shared with other threads, and
    // does not allocate or take locks. An error aborts the spawn with that
    // error.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(in_child);
    }
}
