//! Per-spawn resource limits and process settings, and the resource usage
//! a terminal snapshot reports.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Limits and settings applied in the child before it runs the program.
/// Every field is optional; the default changes nothing.
///
/// rlimits set both the soft and the hard limit, so the program cannot
/// raise them again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Limits {
    /// `RLIMIT_CPU`: CPU seconds; past it the kernel sends `SIGXCPU`, then
    /// `SIGKILL`.
    pub cpu_seconds: Option<u64>,
    /// `RLIMIT_AS`: bytes of address space.
    pub address_space_bytes: Option<u64>,
    /// `RLIMIT_NOFILE`: open file descriptors.
    pub open_files: Option<u64>,
    /// `RLIMIT_NPROC`: processes (threads) of the user. Note that Linux
    /// counts every process of the real user id, not only this tree's.
    pub max_processes: Option<u64>,
    /// `RLIMIT_CORE`: core dump size in bytes (0 disables core dumps).
    pub core_bytes: Option<u64>,
    /// The nice value (-20..=19); lowering it below ours needs privilege.
    pub nice: Option<i32>,
    /// The file mode creation mask (0..=0o777).
    pub umask: Option<u32>,
    /// Start the child in a new session (`setsid`) instead of only a new
    /// process group. Either way its pid is its process-group id and a kill
    /// reaches the whole group; a new session also detaches it from our
    /// controlling terminal.
    pub new_session: bool,
}

impl Limits {
    /// `RLIMIT_CPU` in CPU seconds.
    pub fn cpu_seconds(mut self, seconds: u64) -> Self {
        self.cpu_seconds = Some(seconds);
        self
    }

    /// `RLIMIT_AS` in bytes.
    pub fn address_space_bytes(mut self, bytes: u64) -> Self {
        self.address_space_bytes = Some(bytes);
        self
    }

    /// `RLIMIT_NOFILE`.
    pub fn open_files(mut self, files: u64) -> Self {
        self.open_files = Some(files);
        self
    }

    /// `RLIMIT_NPROC` (counted over the whole real user id).
    pub fn max_processes(mut self, processes: u64) -> Self {
        self.max_processes = Some(processes);
        self
    }

    /// `RLIMIT_CORE` in bytes.
    pub fn core_bytes(mut self, bytes: u64) -> Self {
        self.core_bytes = Some(bytes);
        self
    }

    /// The nice value (-20..=19).
    pub fn nice(mut self, nice: i32) -> Self {
        self.nice = Some(nice);
        self
    }

    /// The file mode creation mask (0..=0o777).
    pub fn umask(mut self, mask: u32) -> Self {
        self.umask = Some(mask);
        self
    }

    /// Start the child in a new session (`setsid`).
    pub fn new_session(mut self, on: bool) -> Self {
        self.new_session = on;
        self
    }

    /// Whether any field asks for something (otherwise spawning takes the
    /// fast path with no code run in the child before exec).
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// Checks the values: nice in -20..=19, umask in 0..=0o777.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(nice) = self.nice
            && !(-20..=19).contains(&nice)
        {
            return Err(Error::invalid(format!("nice {nice} is outside -20..=19")));
        }
        if let Some(mask) = self.umask
            && mask > 0o777
        {
            return Err(Error::invalid(format!("umask {mask:#o} is above 0o777")));
        }
        Ok(())
    }
}

/// What the process used, as the kernel reported when procward reaped it
/// (`wait4`). Covers the spawned process and the descendants it waited for
/// itself; not descendants that were orphaned or killed with its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResourceUsage {
    /// CPU time in user mode.
    pub user_time: Duration,
    /// CPU time in kernel mode.
    pub system_time: Duration,
    /// Peak resident set size, in KiB.
    pub max_rss_kib: u64,
}
