//! Applying [`Limits`] in the child, between fork and exec.

use std::io;
use std::os::unix::process::CommandExt;

use rustix::fs::Mode;
use rustix::process::{Resource, Rlimit, setpriority_process, setrlimit, setsid, umask};

use crate::messages::Limits;

/// Makes the child apply `limits` before it executes the program. With
/// `new_session`, the child calls `setsid` (which also makes it the leader
/// of a new process group); otherwise the caller must have asked for a new
/// process group.
pub(crate) fn apply(cmd: &mut std::process::Command, limits: Limits) {
    if limits.is_empty() {
        return;
    }
    let rlimits: [(Resource, Option<u64>); 5] = [
        (Resource::Cpu, limits.cpu_seconds),
        (Resource::As, limits.address_space_bytes),
        (Resource::Nofile, limits.open_files),
        (Resource::Nproc, limits.max_processes),
        (Resource::Core, limits.core_bytes),
    ];
    let Limits {
        nice,
        umask: mask,
        new_session,
        ..
    } = limits;
    let in_child = move || -> io::Result<()> {
        // Runs in the forked child, where only async-signal-safe calls are
        // allowed: every call below is a raw system call through rustix's
        // linux_raw backend, on values captured by copy (no allocation, no
        // lock); errors become `io::Error`s of the raw-errno kind, which do
        // not allocate either.
        if new_session {
            setsid().map_err(io::Error::from)?;
        }
        for (resource, limit) in rlimits {
            if let Some(limit) = limit {
                let both = Rlimit {
                    current: Some(limit),
                    maximum: Some(limit),
                };
                setrlimit(resource, both).map_err(io::Error::from)?;
            }
        }
        if let Some(nice) = nice {
            setpriority_process(None, nice).map_err(io::Error::from)?;
        }
        if let Some(mask) = mask {
            umask(Mode::from_bits_truncate(mask));
        }
        Ok(())
    };
    // SAFETY: `pre_exec` requires the closure to be safe to run between
    // fork and exec: it only makes async-signal-safe system calls (see
    // above), touches no memory shared with other threads, and does not
    // allocate or take locks. An error aborts the spawn with that error.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(in_child);
    }
}
