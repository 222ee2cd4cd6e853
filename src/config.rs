//! [`RegistryConfig`]: the limits and grace periods of one registry.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::Error;
use crate::messages::CapPolicy;
pub use crate::messages::DEFAULT_OUTPUT_CAP;
use crate::policy::PolicyChain;

/// The settings of one registry. Start from [`RegistryConfig::default`] and
/// change what you need:
///
/// ```
/// use std::time::Duration;
/// use procward::RegistryConfig;
///
/// let config = RegistryConfig::default()
///     .max_handles(256)
///     .drain_grace(Duration::from_millis(250));
/// assert_eq!(config.max_handles, 256);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryConfig {
    /// How many handles (running or finished) the registry keeps before a
    /// spawn evicts one. Default 64; at least 1.
    pub max_handles: usize,
    /// What a spawn does when all `max_handles` handles run: evict one,
    /// refuse, or queue. Default `Queue { max_queued: 1024 }` (see
    /// [`CapPolicy`] for why); `procward serve` and `procward node` use
    /// `Evict`. A spawn may choose its own with
    /// [`SpawnRequest::cap_policy`](crate::SpawnRequest::cap_policy).
    pub cap_policy: CapPolicy,
    /// How long, after the spawned process exits, to keep reading output
    /// that its descendants still write before killing what is left of its
    /// process group. Default 1 s.
    pub drain_grace: Duration,
    /// The per-stream capture cap in bytes, unless a spawn sets its own.
    /// Default 16 MiB; at least 1.
    pub output_cap: usize,
    /// For a kill with a signal other than `SIGKILL` and no grace of its
    /// own: how long to wait before `SIGKILL`. Default 5 s.
    pub kill_grace: Duration,
    /// Orphan-reaping mode. When on, the registry makes this OS process a
    /// child subreaper (`PR_SET_CHILD_SUBREAPER`, process-wide and
    /// permanent), so processes orphaned inside a spawned tree are handed to
    /// us instead of pid 1, and a handle turns terminal only after every
    /// member of its process group has died and been reaped.
    ///
    /// Turn it on where pid 1 does not reap orphans (some containers and
    /// VMs), or to be sure that when a kill returns, nothing of the tree is
    /// left. The cost: a scan of `/proc` per finished process, and orphans of
    /// *other* children of this OS process (not started by procward) also
    /// come here and are not reaped by procward. Default off.
    pub reap_orphans: bool,
    /// Escapee hunting, under process-group containment (a cgroup holds
    /// escapees by itself, so with one this does nothing). When on, every
    /// spawn gets `PROCWARD_TOKEN=<token>`
    /// in its environment, and when its handle ends, every process whose
    /// environment still carries that token is killed, even one that left
    /// the process group with `setsid` (a daemon, a double fork).
    ///
    /// The trade-offs: a scan of `/proc` per finished process; the variable
    /// is visible to the program; a descendant that clears or replaces its
    /// environment escapes the hunt (run it under a namespace or cgroup if
    /// that matters). Default off; on in `procward serve`. Pair it with
    /// [`reap_orphans`](Self::reap_orphans) so killed escapees that were
    /// orphaned to us are reaped too.
    pub kill_escapees: bool,
    /// A guard process that kills this registry's processes if the program
    /// hosting the registry dies without stopping it (SIGKILL, a crash, an
    /// abort), when no code of ours can run. It is a small `sh` process
    /// that notices its parent is gone (it looks once a second) and then
    /// kills the registry's cgroup under cgroup containment, or, under
    /// process groups, the processes carrying the `PROCWARD_TOKEN` every
    /// spawn then has in its environment (as with
    /// [`kill_escapees`](Self::kill_escapees)), so it never signals a
    /// process that reused one of their pids; there a descendant that
    /// clears its environment escapes it. It takes no command a tree could
    /// send; an orderly stop SIGKILLs it. Costs one `sh` (and a `sleep`
    /// a second) per registry and nothing per spawn. Default off; on in
    /// `procward serve` and `procward node`.
    pub guard: bool,
    /// Whether each process tree gets a cgroup v2 of its own (see
    /// [`CgroupMode`]). Default [`CgroupMode::Auto`]: a cgroup when this
    /// process can make one, a process group otherwise.
    pub cgroup: CgroupMode,
    /// The cgroup under which the registry makes its own
    /// (`procward-<pid>-<n>`), one child cgroup per spawn. It must lie on a
    /// cgroup2 mount and be writable. Default `None`: this process's own
    /// cgroup, which must then be delegated to it (or it runs as root).
    pub cgroup_root: Option<PathBuf>,
    /// How many receipts of evicted handles the registry keeps. A receipt
    /// answers poll, wait and kill for an evicted handle (status, times,
    /// exit code, byte totals; no output). Past the cap the oldest receipt
    /// is dropped, with a warning if nobody had seen its status. Default
    /// 1024; 0 keeps none.
    pub max_receipts: usize,
    /// Where `started_at` and `ended_at` come from. Default: the system
    /// clock.
    pub clock: Clock,
    /// The policy every spawn passes first. Default: allow everything.
    pub policy: PolicyChain,
    /// Named policy profiles; a spawn asks for one with
    /// [`SpawnRequest::sandbox_profile`](crate::SpawnRequest::sandbox_profile),
    /// and it applies after [`policy`](Self::policy). An unknown name is
    /// denied, never allowed.
    pub profiles: BTreeMap<String, PolicyChain>,
}

/// Whether a registry contains each process tree in a cgroup v2 of its own
/// or in a process group (see `docs/security.md` for what each holds).
///
/// A registry with cgroups makes `procward-<pid>-<n>` under
/// [`RegistryConfig::cgroup_root`] (or its own cgroup) when it starts,
/// one cgroup in it per spawn, and removes them all when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CgroupMode {
    /// A cgroup per tree when a writable cgroup v2 hierarchy with
    /// `cgroup.kill` (Linux 5.14) is found; otherwise process groups, with
    /// a warning in the log and `process_group` in every snapshot.
    #[default]
    Auto,
    /// A cgroup per tree, or the registry does not start.
    Required,
    /// Process groups only, as before cgroups.
    Off,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            max_handles: 64,
            cap_policy: CapPolicy::default(),
            drain_grace: Duration::from_secs(1),
            output_cap: DEFAULT_OUTPUT_CAP,
            kill_grace: Duration::from_secs(5),
            reap_orphans: false,
            kill_escapees: false,
            guard: false,
            cgroup: CgroupMode::Auto,
            cgroup_root: None,
            max_receipts: 1024,
            clock: Clock::system(),
            policy: PolicyChain::new(),
            profiles: BTreeMap::new(),
        }
    }
}

impl RegistryConfig {
    /// Sets [`max_handles`](Self::max_handles).
    pub fn max_handles(mut self, max: usize) -> Self {
        self.max_handles = max;
        self
    }

    /// Sets [`cap_policy`](Self::cap_policy).
    pub fn cap_policy(mut self, policy: CapPolicy) -> Self {
        self.cap_policy = policy;
        self
    }

    /// Sets [`drain_grace`](Self::drain_grace).
    pub fn drain_grace(mut self, grace: Duration) -> Self {
        self.drain_grace = grace;
        self
    }

    /// Sets [`output_cap`](Self::output_cap).
    pub fn output_cap(mut self, bytes: usize) -> Self {
        self.output_cap = bytes;
        self
    }

    /// Sets [`kill_grace`](Self::kill_grace).
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// Sets [`max_receipts`](Self::max_receipts).
    pub fn max_receipts(mut self, max: usize) -> Self {
        self.max_receipts = max;
        self
    }

    /// Sets [`clock`](Self::clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets [`policy`](Self::policy).
    pub fn policy(mut self, policy: PolicyChain) -> Self {
        self.policy = policy;
        self
    }

    /// Adds a named profile to [`profiles`](Self::profiles).
    pub fn profile(mut self, name: impl Into<String>, policy: PolicyChain) -> Self {
        self.profiles.insert(name.into(), policy);
        self
    }

    /// Sets [`kill_escapees`](Self::kill_escapees).
    pub fn kill_escapees(mut self, on: bool) -> Self {
        self.kill_escapees = on;
        self
    }

    /// Sets [`guard`](Self::guard).
    pub fn guard(mut self, on: bool) -> Self {
        self.guard = on;
        self
    }

    /// Sets [`cgroup`](Self::cgroup).
    pub fn cgroup(mut self, mode: CgroupMode) -> Self {
        self.cgroup = mode;
        self
    }

    /// Sets [`cgroup_root`](Self::cgroup_root).
    pub fn cgroup_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.cgroup_root = Some(root.into());
        self
    }

    /// Sets [`reap_orphans`](Self::reap_orphans).
    pub fn reap_orphans(mut self, on: bool) -> Self {
        self.reap_orphans = on;
        self
    }

    /// Checks the settings: `max_handles` and `output_cap` above zero.
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_handles == 0 {
            return Err(Error::invalid("max_handles must be at least 1"));
        }
        if self.output_cap == 0 {
            return Err(Error::invalid("output_cap must be at least 1"));
        }
        Ok(())
    }
}
