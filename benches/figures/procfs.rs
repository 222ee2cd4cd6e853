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
