//! cgroup v2 containment: one cgroup per process tree, under a parent
//! cgroup the registry owns.
//!
//! A process cannot leave its cgroup without write access to the cgroup
//! hierarchy, whatever it does with `setsid`, `setpgid` or its environment,
//! and every process it forks starts in the same cgroup. So the cgroup is
//! the tree: `cgroup.kill` SIGKILLs every member at once, `cgroup.freeze`
//! stops them all, `cgroup.events` says when none is left, and `cpu.stat`
//! (with `memory.peak` and `pids.peak` where those controllers are
//! enabled) counts the whole tree.
//!
//! Layout: `<base>/procward-<pid>-<n>/t<m>`, where `<base>` is the cgroup
//! the operator named or this process's own cgroup (found from
//! `/proc/self/mountinfo` and `/proc/self/cgroup`, never a fixed path),
//! `procward-<pid>-<n>` belongs to one registry, and `t<m>` to one spawn.
//!
//! The child is forked straight into its cgroup
//! ([`fork_into`](super::fork_into), `clone3` with `CLONE_INTO_CGROUP`).
//! Where `clone3` is refused, it joins between fork and exec instead: the
//! spawner thread opens the spawn's `cgroup.procs` before forking, and the
//! child writes `0` (itself) to it before it executes the program. Either
//! way the program's first instruction already runs in the cgroup; a
//! child that cannot be placed fails to spawn.
//!
//! Every function here does blocking file I/O and runs on the
//! [OS worker](super::worker)'s threads (spawner threads included), never
//! on an async runtime's: the process actor asks the worker to kill or
//! freeze its tree's cgroup, and the worker does it in the order asked.
//! A tree's cgroup costs the host no descriptor while it runs.

use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::process::getpid;

use crate::messages::CgroupLimits;

/// The controllers whose files procward reads or writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Controllers {
    /// `memory.peak`, `memory.max`.
    pub(crate) memory: bool,
    /// `pids.peak`, `pids.max`.
    pub(crate) pids: bool,
    /// `cpu.max`.
    pub(crate) cpu: bool,
}

impl Controllers {
    /// Parses a `cgroup.controllers` or `cgroup.subtree_control` line.
    pub(crate) fn parse(text: &str) -> Self {
        let mut found = Controllers::default();
        for name in text.split_whitespace() {
            match name {
                "memory" => found.memory = true,
                "pids" => found.pids = true,
                "cpu" => found.cpu = true,
                _ => {}
            }
        }
        found
    }

    /// The first limit in `limits` that needs a controller missing here,
    /// with that controller's name.
    pub(crate) fn missing_for(
        &self,
        limits: &CgroupLimits,
    ) -> Option<(&'static str, &'static str)> {
        if limits.memory_max.is_some() && !self.memory {
            return Some(("memory_max", "memory"));
        }
        if limits.pids_max.is_some() && !self.pids {
            return Some(("pids_max", "pids"));
        }
        if limits.cpu_max.is_some() && !self.cpu {
            return Some(("cpu_max", "cpu"));
        }
        None
    }
}

/// The cgroup2 mounts in a `/proc/self/mountinfo` text: (mount point, the
/// hierarchy path mounted there).
pub(crate) fn cgroup2_mounts(mountinfo: &str) -> Vec<(PathBuf, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            // `id parent major:minor root mount-point options [tags] - fstype source super-options`
            let (before, after) = line.split_once(" - ")?;
            if after.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            let mut fields = before.split_whitespace();
            let root = fields.nth(3)?;
            let mount_point = fields.next()?;
            Some((PathBuf::from(unescape(mount_point)), unescape(root)))
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Some(value) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|octal| u8::from_str_radix(octal, 8).ok())
        {
            out.push(value);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's cgroup v2 path from a `/proc/self/cgroup` text (the
/// `0::<path>` line).
pub(crate) fn own_cgroup(proc_cgroup: &str) -> Option<String> {
    proc_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

/// Where this process's own cgroup is in the file system, given the
/// cgroup2 mounts and its cgroup path.
fn own_cgroup_dir(mounts: &[(PathBuf, String)], cgroup: &str) -> Option<PathBuf> {
    mounts.iter().find_map(|(mount_point, root)| {
        let rest = if root == "/" {
            Some(cgroup)
        } else {
            cgroup
                .strip_prefix(root.as_str())
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        }?;
        Some(mount_point.join(rest.trim_start_matches('/')))
    })
}

/// Finds the cgroup under which a registry makes its own: `root` when the
/// operator named one (it must lie on a cgroup2 mount), otherwise this
/// process's own cgroup. Blocking: reads `/proc/self`.
pub(crate) fn locate(root: Option<&Path>) -> io::Result<PathBuf> {
    let mounts = cgroup2_mounts(&fs::read_to_string("/proc/self/mountinfo")?);
    if mounts.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no cgroup2 file system is mounted",
        ));
    }
    match root {
        Some(root) => {
            let on_cgroup2 = root.is_absolute()
                && mounts
                    .iter()
                    .any(|(mount_point, _)| root.starts_with(mount_point));
            if !on_cgroup2 || !root.join("cgroup.procs").exists() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a cgroup v2 directory", root.display()),
                ));
            }
            Ok(root.to_owned())
        }
        None => {
            let cgroup =
                own_cgroup(&fs::read_to_string("/proc/self/cgroup")?).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "no cgroup v2 membership")
                })?;
            own_cgroup_dir(&mounts, &cgroup).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("this process's cgroup {cgroup} is not under a cgroup2 mount"),
                )
            })
        }
    }
}

static NEXT_PARENT: AtomicU64 = AtomicU64::new(1);

/// Where a registry cgroup dropped without [`RegistryCgroup::remove`] goes
/// (to be killed and removed once empty). The OS worker installs it when it
/// starts, before any registry exists; so this module needs nothing from
/// the worker above it.
static DROPPED: OnceLock<Box<dyn Fn(PathBuf) + Send + Sync>> = OnceLock::new();

/// Sends every registry cgroup dropped unremoved to `sink`. The first call
/// wins.
pub(crate) fn send_dropped_to(sink: impl Fn(PathBuf) + Send + Sync + 'static) {
    let _ = DROPPED.set(Box::new(sink));
}

/// Removes the registry cgroups under `base` that their owner left behind:
/// `procward-<pid>-<n>` directories that are empty (`populated 0`) and
/// whose `<pid>` names no process. (A pid the OS gave to another process
/// keeps its directory until a later sweep: only a missing process counts
/// as gone.)
/// A host killed without a guard, or a test process that ended before its
/// registry's stop ran, leaves these. Blocking; errors are ignored (the
/// directory stays for the next sweep).
pub(crate) fn remove_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|name| name.strip_prefix("procward-"))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        let gone = !Path::new(&format!("/proc/{owner}")).exists();
        if gone && matches!(populated(&path), Ok(false)) {
            let _ = remove_tree(&path);
        }
    }
}

/// A registry's own cgroup, parent of one cgroup per spawn. Made by
/// [`RegistryCgroup::create`], removed (with everything in it killed) by
/// [`RegistryCgroup::remove`].
#[derive(Debug)]
pub(crate) struct RegistryCgroup {
    path: PathBuf,
    /// Enabled for the spawns' cgroups (in this cgroup's
    /// `cgroup.subtree_control`).
    controllers: Controllers,
    /// [`remove`](Self::remove) ran; otherwise the drop hands the cgroup
    /// to the OS worker to kill and remove.
    removed: bool,
}

impl RegistryCgroup {
    /// Makes `<base>/procward-<pid>-<n>` and enables in it every controller
    /// procward uses that `base` offers. Fails if the cgroup cannot be made
    /// or lacks `cgroup.kill` (Linux before 5.14). Blocking.
    pub(crate) fn create(base: &Path) -> io::Result<RegistryCgroup> {
        let name = format!(
            "procward-{}-{}",
            getpid().as_raw_nonzero(),
            NEXT_PARENT.fetch_add(1, Ordering::Relaxed)
        );
        let path = base.join(name);
        fs::create_dir(&path)?;
        let mut cgroup = RegistryCgroup {
            path,
            controllers: Controllers::default(),
            removed: false,
        };
        if !cgroup.path.join("cgroup.kill").exists() || !cgroup.path.join("cgroup.freeze").exists()
        {
            let _ = fs::remove_dir(&cgroup.path);
            cgroup.removed = true;
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this kernel's cgroups have no cgroup.kill or cgroup.freeze (Linux 5.14 or later needed)",
            ));
        }
        let offered = Controllers::parse(
            &fs::read_to_string(cgroup.path.join("cgroup.controllers")).unwrap_or_default(),
        );
        let mut wanted = String::new();
        for (name, on) in [
            ("memory", offered.memory),
            ("pids", offered.pids),
            ("cpu", offered.cpu),
        ] {
            if on {
                wanted.push_str(&format!("+{name} "));
            }
        }
        if !wanted.is_empty() {
            // A controller that cannot be enabled stays off: its limits are
            // then refused, which the read-back below makes sure of.
            let _ = fs::write(
                cgroup.path.join("cgroup.subtree_control"),
                wanted.trim_end(),
            );
        }
        cgroup.controllers = Controllers::parse(
            &fs::read_to_string(cgroup.path.join("cgroup.subtree_control")).unwrap_or_default(),
        );
        Ok(cgroup)
    }

    /// The cgroup's directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The controllers the spawns' cgroups have.
    pub(crate) fn controllers(&self) -> Controllers {
        self.controllers
    }

    /// Kills everything left in this cgroup and below, waits (up to
    /// `deadline`) for it to empty, and removes it with every cgroup in it.
    /// Blocking.
    pub(crate) fn remove(mut self, deadline: Duration) -> io::Result<()> {
        self.removed = true;
        if !self.path.exists() {
            return Ok(());
        }
        kill_path(&self.path)?;
        wait_empty(&self.path, deadline)?;
        remove_tree(&self.path)
    }
}

impl Drop for RegistryCgroup {
    fn drop(&mut self) {
        if !self.removed {
            // The registry's state was dropped without its orderly stop:
            // the worker kills what is left and removes the cgroups once
            // they are empty.
            if let Some(sink) = DROPPED.get() {
                sink(std::mem::take(&mut self.path));
            }
        }
    }
}

/// Where one spawn goes: a cgroup to make under the registry's.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    /// The registry's cgroup.
    pub(crate) parent: PathBuf,
    /// The spawn's cgroup, a child of `parent`.
    pub(crate) name: String,
    /// The limits to write before the child joins.
    pub(crate) limits: CgroupLimits,
}

impl Placement {
    /// Makes the spawn's cgroup, writes its limits, and opens what the
    /// child and the process actor need. Blocking: for a spawner thread.
    pub(crate) fn create(&self) -> io::Result<(Joiner, PathBuf)> {
        let path = self.parent.join(&self.name);
        fs::create_dir(&path)?;
        let opened = (|| {
            let limits = &self.limits;
            if let Some(bytes) = limits.memory_max {
                fs::write(path.join("memory.max"), bytes.to_string())?;
            }
            if let Some(pids) = limits.pids_max {
                fs::write(path.join("pids.max"), pids.to_string())?;
            }
            if let Some(cpu) = limits.cpu_max {
                fs::write(
                    path.join("cpu.max"),
                    format!("{} {}", cpu.quota_us, cpu.period_us),
                )?;
            }
            open_write(&path.join("cgroup.procs"))
        })();
        match opened {
            Ok(procs) => Ok((Joiner(procs), path)),
            Err(err) => {
                let _ = fs::remove_dir(&path);
                Err(err)
            }
        }
    }
}

/// Opens a cgroup control file for writing; close-on-exec, so no child
/// inherits it.
fn open_write(path: &Path) -> io::Result<OwnedFd> {
    Ok(fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)?
        .into())
}

/// A spawn's open `cgroup.procs`, to be written by the forked child.
#[derive(Debug)]
pub(crate) struct Joiner(OwnedFd);

impl Joiner {
    /// Makes the child of `cmd` join the cgroup before it executes the
    /// program (the first thing it does after the fork). `self` must stay
    /// open until the spawn returns.
    pub(crate) fn join_in_child(&self, cmd: &mut std::process::Command) {
        let fd = self.0.as_raw_fd();
        let join = move || -> io::Result<()> {
            // SAFETY: `fd` is the parent's `OwnedFd`, open for the whole
            // spawn (the caller keeps `self` until `spawn` returns), and
            // the forked child has a copy of the parent's descriptor table:
            // the descriptor is open and is `cgroup.procs`.
            #[allow(unsafe_code)]
            let procs = unsafe { BorrowedFd::borrow_raw(fd) };
            // "0" moves the writing process: the child itself.
            match rustix::io::write(procs, b"0") {
                Ok(1) => Ok(()),
                Ok(_) => Err(io::Error::from_raw_os_error(libc::EIO)),
                Err(errno) => Err(errno.into()),
            }
        };
        // SAFETY: `pre_exec` requires the closure to be safe between fork
        // and exec: it makes one raw `write(2)` through rustix's linux_raw
        // backend on a copied integer, allocates nothing and takes no lock
        // (an error is an `io::Error` of the raw-errno kind, which does not
        // allocate).
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(join);
        }
    }
}

/// A write to a tree's cgroup that the OS worker does for its process
/// actor, in the order asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CgroupWrite {
    /// `cgroup.kill`.
    Kill,
    /// `cgroup.freeze`: freeze (`true`) or thaw.
    Freeze(bool),
}

/// Freezes (or thaws) every process in the cgroup at `path`. The kernel
/// freezes them asynchronously; `cgroup.events` says `frozen 1` once all
/// are. Blocking.
pub(crate) fn freeze_path(path: &Path, on: bool) -> io::Result<()> {
    fs::write(path.join("cgroup.freeze"), if on { "1" } else { "0" })
}

/// SIGKILLs every process in the cgroup at `path` and below. Blocking.
pub(crate) fn kill_path(path: &Path) -> io::Result<()> {
    match fs::write(path.join("cgroup.kill"), "1") {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Whether any process is in the cgroup at `path` or below (its
/// `cgroup.events` says `populated 1`). A removed cgroup is empty.
/// Blocking.
pub(crate) fn populated(path: &Path) -> io::Result<bool> {
    match fs::read_to_string(path.join("cgroup.events")) {
        Ok(events) => Ok(event(&events, "populated") != Some(0)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// The value of `key` in a `cgroup.events` or `cpu.stat` text.
pub(crate) fn event(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok())?
    })
}

/// Waits until the cgroup at `path` is empty or `deadline` has passed
/// (then `TimedOut`). Blocking.
///
/// The kernel announces every change of `cgroup.events` to `poll` as
/// `POLLPRI` on an open descriptor of it, so this sleeps until the
/// `populated` line changes instead of polling with pauses; it still reads
/// the file again at least every [`EVENTS_RECHECK`], in case a change came
/// between a read and the `poll`.
fn wait_empty(path: &Path, deadline: Duration) -> io::Result<()> {
    let give_up = Instant::now() + deadline;
    let mut events = match fs::File::open(path.join("cgroup.events")) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    let mut text = String::new();
    loop {
        text.clear();
        rustix::fs::seek(&events, rustix::fs::SeekFrom::Start(0))?;
        events.read_to_string(&mut text)?;
        if event(&text, "populated") == Some(0) {
            return Ok(());
        }
        let left = give_up.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{} still has processes", path.display()),
            ));
        }
        let wait = left.min(EVENTS_RECHECK);
        let timeout = rustix::event::Timespec {
            tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(wait.subsec_nanos()),
        };
        let mut fds = [rustix::event::PollFd::new(
            &events,
            rustix::event::PollFlags::PRI,
        )];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// How often [`wait_empty`] reads `cgroup.events` again without a change
/// announced.
const EVENTS_RECHECK: Duration = Duration::from_millis(50);

/// Removes the cgroup at `path` and every cgroup below it (a tree running
/// as root may have made some), deepest first. They must be empty.
/// Blocking.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    // Most cgroups have none below them: one `rmdir` does it, without
    // listing the directory's twenty-odd interface files.
    match fs::remove_dir(path) {
        Ok(()) => return Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path())?;
        }
    }
    match fs::remove_dir(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// What a tree used, from its cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TreeUsage {
    /// `cpu.stat` `user_usec`: every member's user time, orphans included.
    pub(crate) user: Duration,
    /// `cpu.stat` `system_usec`.
    pub(crate) system: Duration,
    /// `memory.peak` in bytes, when the memory controller is enabled.
    pub(crate) memory_peak: Option<u64>,
    /// `pids.peak`, when the pids controller is enabled.
    pub(crate) pids_peak: Option<u64>,
}

/// Reads what the tree in the cgroup at `path` used. Blocking.
pub(crate) fn usage(path: &Path) -> io::Result<TreeUsage> {
    let stat = fs::read_to_string(path.join("cpu.stat"))?;
    let micros = |key| Duration::from_micros(event(&stat, key).unwrap_or(0));
    // A controller's files exist only where it is enabled: a missing one
    // is `None`, not an error.
    let number = |file: &str| {
        let mut text = String::new();
        fs::File::open(path.join(file))
            .and_then(|mut f| f.read_to_string(&mut text))
            .ok()?;
        text.trim().parse().ok()
    };
    Ok(TreeUsage {
        user: micros("user_usec"),
        system: micros("system_usec"),
        memory_peak: number("memory.peak"),
        pids_peak: number("pids.peak"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_the_cgroup2_mount_among_v1_ones() {
        assert_eq!(
            cgroup2_mounts(MOUNTINFO),
            vec![(PathBuf::from("/sys/fs/cgroup/unified"), "/".to_owned())]
        );
    }

    #[test]
    fn unescapes_mount_points() {
        let line = "41 31 0:38 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mounts(line)[0].0, PathBuf::from("/mnt/my cgroups"));
    }

    #[test]
    fn own_cgroup_is_the_v2_line() {
        let text = "4:memory:/x\n0::/user.slice/session-1.scope\n";
        assert_eq!(
            own_cgroup(text).as_deref(),
            Some("/user.slice/session-1.scope")
        );
        assert_eq!(own_cgroup("4:memory:/x\n"), None);
    }

    #[test]
    fn own_cgroup_dir_follows_the_mount_root() {
        let mounts = vec![(PathBuf::from("/sys/fs/cgroup"), "/".to_owned())];
        assert_eq!(
            own_cgroup_dir(&mounts, "/"),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(
            own_cgroup_dir(&mounts, "/a/b"),
            Some(PathBuf::from("/sys/fs/cgroup/a/b"))
        );
        // A container sees a hierarchy mounted from inside it.
        let nested = vec![(PathBuf::from("/sys/fs/cgroup"), "/ctr".to_owned())];
        assert_eq!(
            own_cgroup_dir(&nested, "/ctr/app"),
            Some(PathBuf::from("/sys/fs/cgroup/app"))
        );
        assert_eq!(own_cgroup_dir(&nested, "/ctrl"), None);
    }

    #[test]
    fn parses_events_and_cpu_stat() {
        assert_eq!(event("populated 1\nfrozen 0\n", "populated"), Some(1));
        assert_eq!(event("populated 1\nfrozen 0\n", "frozen"), Some(0));
        let stat = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n";
        assert_eq!(event(stat, "user_usec"), Some(1000));
        assert_eq!(event(stat, "nr_periods"), None);
    }

    #[test]
    fn controllers_and_the_limits_they_allow() {
        let c = Controllers::parse("cpuset cpu io memory");
        assert!(c.memory && c.cpu && !c.pids);
        let limits = CgroupLimits {
            pids_max: Some(10),
            ..CgroupLimits::default()
        };
        assert_eq!(c.missing_for(&limits), Some(("pids_max", "pids")));
        assert_eq!(
            Controllers::default().missing_for(&CgroupLimits::default()),
            None
        );
    }
}
