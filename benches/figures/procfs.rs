//! What the bench reads of itself in `/proc`: memory, open files, children.

use std::fs;

fn status_kib(field: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Resident memory now, in bytes (`VmRSS`).
pub(crate) fn rss_bytes() -> u64 {
    status_kib("VmRSS:") * 1024
}

/// Peak resident memory since the last [`reset_peak`], in bytes (`VmHWM`).
pub(crate) fn peak_rss_bytes() -> u64 {
    status_kib("VmHWM:") * 1024
}

/// Resets `VmHWM` to the current RSS (Linux 4.0+), so that one figure's
/// peak is not another's.
pub(crate) fn reset_peak() {
    fs::write("/proc/self/clear_refs", "5").expect("resetting VmHWM through /proc/self/clear_refs");
}

/// Open file descriptors of this process.
pub(crate) fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd")
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// The live children of this process (pid and command name), zombies
/// included.
pub(crate) fn children() -> Vec<(u32, String)> {
    let me = std::process::id();
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = head.split_once(" (").map_or("", |(_, c)| c).to_owned();
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(me) {
            out.push((pid, comm));
        }
    }
    out
}

/// Makes sure this process may open `needed` files, raising the soft
/// `RLIMIT_NOFILE` up to the hard limit when it is lower. Returns what the
/// soft limit was and is.
pub(crate) fn ensure_fd_limit(needed: u64) -> (Option<u64>, Option<u64>) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let before = limit.current;
    if before.is_some_and(|soft| soft < needed) {
        let raised = match limit.maximum {
            Some(hard) => needed.min(hard),
            None => needed,
        };
        let new = Rlimit {
            current: Some(raised),
            maximum: limit.maximum,
        };
        if let Err(err) = setrlimit(Resource::Nofile, new) {
            eprintln!("could not raise RLIMIT_NOFILE to {raised}: {err}");
        }
    }
    (before, getrlimit(Resource::Nofile).current)
}

/// What `/proc/<pid>/status` says of a process's memory and threads.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Status {
    /// Resident memory now, bytes (`VmRSS`).
    pub(crate) rss: u64,
    /// Peak resident memory, bytes (`VmHWM`).
    pub(crate) peak_rss: u64,
    /// Threads (`Threads`).
    pub(crate) threads: u64,
}

/// The status of process `pid`, or `None` once it has exited.
pub(crate) fn status_of(pid: u32) -> Option<Status> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    Some(Status {
        rss: field("VmRSS:")? * 1024,
        peak_rss: field("VmHWM:")? * 1024,
        threads: field("Threads:")?,
    })
}

/// Open file descriptors of process `pid`.
pub(crate) fn open_fds_of(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// Makes this process the reaper of its descendants' orphans, so that a
/// probe or server that dies midway hands its children to the bench,
/// which [`kill_and_reap_children`] then ends.
pub(crate) fn become_subreaper() {
    let me = rustix::process::Pid::from_raw(std::process::id() as i32);
    if let Err(err) = rustix::process::set_child_subreaper(me) {
        eprintln!("  could not become a child subreaper: {err}");
    }
}

/// SIGKILLs and reaps every child of this process (zombies included);
/// returns how many there were. Call it only while no child of the bench
/// is meant to run: their pids are safe to signal because an unreaped
/// child's pid cannot be reused.
pub(crate) fn kill_and_reap_children() -> usize {
    use rustix::process::{Pid, Signal, WaitOptions, kill_process, waitpid};
    let left = children();
    for (pid, _) in &left {
        let Some(pid) = Pid::from_raw(*pid as i32) else {
            continue;
        };
        let _ = kill_process(pid, Signal::KILL);
        let _ = waitpid(Some(pid), WaitOptions::empty());
    }
    left.len()
}

/// Kernel memory by slab cache (`/proc/slabinfo`, readable by root only:
/// empty otherwise), in bytes of active objects, plus `Percpu` of
/// `/proc/meminfo` as `percpu`.
pub(crate) fn kernel_memory() -> std::collections::BTreeMap<String, i64> {
    let mut caches = std::collections::BTreeMap::new();
    for line in fs::read_to_string("/proc/slabinfo")
        .unwrap_or_default()
        .lines()
        .skip(2)
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let (Some(name), Some(Ok(active)), Some(Ok(size))) = (
            fields.first(),
            fields.get(1).map(|n| n.parse::<i64>()),
            fields.get(3).map(|n| n.parse::<i64>()),
        ) {
            caches.insert((*name).to_owned(), active * size);
        }
    }
    let percpu = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("Percpu:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<i64>()
                .ok()
        });
    if let Some(kib) = percpu {
        caches.insert("percpu".to_owned(), kib * 1024);
    }
    caches
}
