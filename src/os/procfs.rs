//! The one reader of `/proc`: process status lines, environments and this
//! process's children.
//!
//! Every function here does blocking file I/O. They are called only from
//! the OS worker's thread (`src/os/worker.rs`) and from tests, never from an
//! async runtime's worker threads. A process can end between two reads: every
//! reader treats a missing or unreadable file as "no such process".

use std::io::{self, Read};

/// The fields of `/proc/<pid>/stat` procward uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// The process's id.
    pub pid: i32,
    /// `R`, `S`, `D`, `Z`, ... (`Z`: a zombie, dead and not yet reaped).
    pub state: char,
    /// Its parent's id (the subreaper's or init's once its parent died).
    pub ppid: i32,
    /// Its process group.
    pub pgrp: i32,
    /// Its session.
    pub session: i32,
    /// When the process started, in clock ticks after boot.
    pub start_time: u64,
}

impl ProcStat {
    /// Dead and not yet reaped by its parent (state `Z`).
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }
}

/// Parses a `/proc/<pid>/stat` line. The command name sits in parentheses
/// and may itself hold spaces and parentheses, so fields are counted from
/// the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let (head, rest) = text.rsplit_once(')')?;
    let pid = head.split_once(" (")?.0.trim().parse().ok()?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    // tty_nr, tpgid, flags, minflt, cminflt, majflt, cmajflt,
    // utime, stime, cutime, cstime, priority, nice, num_threads,
    // itrealvalue: 15 fields, then starttime (field 22 of stat(5)).
    let start_time = fields.nth(15)?.parse().ok()?;
    Some(ProcStat {
        pid,
        state,
        ppid,
        pgrp,
        session,
        start_time,
    })
}

/// Reads and parses `/proc/<pid>/stat`, reusing `buf`.
pub fn read_stat(pid: i32, buf: &mut String) -> Option<ProcStat> {
    buf.clear();
    std::fs::File::open(format!("/proc/{pid}/stat"))
        .and_then(|mut file| file.read_to_string(buf))
        .ok()?;
    parse_stat(buf)
}

/// Every pid `/proc` lists now.
pub fn pids() -> io::Result<Vec<i32>> {
    Ok(std::fs::read_dir("/proc")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect())
}

/// The value of `var` in the environment of `pid`, if it has that variable
/// and its environment is readable, reusing `buf`.
pub fn env_var(pid: i32, var: &str, buf: &mut Vec<u8>) -> Option<String> {
    buf.clear();
    std::fs::File::open(format!("/proc/{pid}/environ"))
        .and_then(|mut file| file.read_to_end(buf))
        .ok()?;
    buf.split(|&b| b == 0).find_map(|entry| {
        let value = entry.strip_prefix(var.as_bytes())?.strip_prefix(b"=")?;
        String::from_utf8(value.to_vec()).ok()
    })
}

/// The children of this process (of any of its threads), zombies included,
/// from `/proc/self/task/*/children`.
pub fn own_children() -> io::Result<Vec<i32>> {
    let mut children = Vec::new();
    let mut text = String::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let Ok(task) = task else { continue };
        text.clear();
        // A thread that ended since the listing has no file: skip it.
        let Ok(mut file) = std::fs::File::open(task.path().join("children")) else {
            continue;
        };
        if file.read_to_string(&mut text).is_ok() {
            children.extend(
                text.split_whitespace()
                    .filter_map(|pid| pid.parse::<i32>().ok()),
            );
        }
    }
    Ok(children)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_names() {
        let text =
            "4242 (we ird) (name)) S 17 4200 4200 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        assert_eq!(
            parse_stat(text),
            Some(ProcStat {
                pid: 4242,
                state: 'S',
                ppid: 17,
                pgrp: 4200,
                session: 4200,
                start_time: 987654,
            })
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("12 (x"), None);
        assert_eq!(parse_stat("x (y) S 1 2"), None);
        assert_eq!(parse_stat("1 (y) S 1 2 3"), None);
    }

    #[test]
    fn reads_own_stat_and_children() {
        let me = rustix::process::getpid().as_raw_nonzero().get();
        let mut buf = String::new();
        let stat = read_stat(me, &mut buf).expect("own stat");
        assert_eq!(stat.pid, me);
        assert!(!stat.is_zombie());
        assert!(own_children().is_ok());
        assert!(pids().expect("pids").contains(&me));
    }

    #[test]
    fn finds_an_environment_variable() {
        let me = rustix::process::getpid().as_raw_nonzero().get();
        let mut buf = Vec::new();
        // PATH is set in every test environment this crate runs in; a
        // variable that is surely absent is not found.
        assert!(env_var(me, "PROCWARD_SURELY_UNSET_VARIABLE", &mut buf).is_none());
    }
}
