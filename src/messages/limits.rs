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
    /// cgroup `memory.max` of the tree, in bytes: past it the kernel
    /// reclaims, then OOM-kills inside the tree. Needs cgroup containment
    /// with the memory controller enabled; otherwise the spawn is denied
    /// (`policy_denied`, rule `limit`).
    pub memory_max: Option<u64>,
    /// cgroup `pids.max` of the tree: a fork past it fails with `EAGAIN`.
    /// Needs the pids controller, as above.
    pub pids_max: Option<u64>,
    /// cgroup `cpu.max` of the tree: at most `quota_us` of CPU time per
    /// `period_us`. Needs the cpu controller, as above.
    pub cpu_max: Option<CpuMax>,
}

/// A cgroup `cpu.max`: `quota_us` microseconds of CPU time per `period_us`
/// microseconds, for the whole tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuMax {
    /// CPU time allowed per period, in microseconds.
    pub quota_us: u64,
    /// The period, in microseconds (1000..=1000000).
    pub period_us: u64,
}

/// The cgroup limits of a spawn, as [`Limits`] asks for them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CgroupLimits {
    pub(crate) memory_max: Option<u64>,
    pub(crate) pids_max: Option<u64>,
    pub(crate) cpu_max: Option<CpuMax>,
}

impl CgroupLimits {
    pub(crate) fn is_empty(&self) -> bool {
        *self == CgroupLimits::default()
    }
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

    /// The cgroup limits asked for.
    pub(crate) fn cgroup(&self) -> CgroupLimits {
        CgroupLimits {
            memory_max: self.memory_max,
            pids_max: self.pids_max,
            cpu_max: self.cpu_max,
        }
    }

    /// Checks the values: nice in -20..=19, umask in 0..=0o777, a `cpu_max`
    /// period in 1000..=1000000 µs and a quota of at least 1000 µs.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(cpu) = self.cpu_max
            && (!(1000..=1_000_000).contains(&cpu.period_us) || cpu.quota_us < 1000)
        {
            return Err(Error::invalid(format!(
                "cpu_max {}/{} µs: the period must be 1000..=1000000 and the quota at least 1000",
                cpu.quota_us, cpu.period_us
            )));
        }
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

/// What the process used.
///
/// Under cgroup containment the CPU times come from the tree's cgroup
/// (`cpu.stat`) and cover every process of the tree, orphans and escapees
/// included. Under process-group containment they come from `wait4` when
/// procward reaped the child, and cover the child and the descendants it
/// waited for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResourceUsage {
    /// CPU time in user mode.
    pub user_time: Duration,
    /// CPU time in kernel mode.
    pub system_time: Duration,
    /// The tree's peak memory in KiB: the cgroup's `memory.peak` (which
    /// counts page cache as well as resident memory), when the tree has a
    /// cgroup with the memory controller enabled. `None` otherwise: the
    /// only other figure, `wait4`'s `ru_maxrss`, starts from the spawning
    /// process's own peak (the kernel copies it into the child when the
    /// child executes its program), so for a small child of a large host
    /// it reports the host's memory, not the child's.
    pub max_rss_kib: Option<u64>,
    /// The most processes the tree had at once: the cgroup's `pids.peak`,
    /// when the pids controller is enabled; `None` otherwise.
    #[serde(default)]
    pub peak_processes: Option<u64>,
}
