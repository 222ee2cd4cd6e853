//! Orphan reaping: making this OS process a child subreaper, and sweeping a
//! killed process group until none of its members is left.
//!
//! When a process in a tree dies before its own children, the kernel hands
//! those children to the nearest subreaper, or to pid 1. Where pid 1 does
//! not reap (some containers and VMs), every such orphan would stay a
//! zombie forever. In orphan-reaping mode the registry marks this OS process
//! as a child subreaper, so orphans of its trees come to it, and a process
//! actor sweeps its group before it reaps its own child.
//!
//! Soundness: the sweep runs while the group leader (the spawned child) is
//! still unreaped, so the group id cannot be reused and every process with
//! that process-group id belongs to the tree. The sweep only reaps (never
//! signals), and only zombies that are our children in that group and are
//! not the leader itself.

use std::io;
use std::time::Duration;

use rustix::process::{Pid, WaitOptions, getpid, set_child_subreaper, waitpid};

/// Makes this OS process the reaper of its descendants' orphans.
pub(crate) fn become_subreaper() -> io::Result<()> {
    set_child_subreaper(Some(getpid())).map_err(io::Error::from)
}

/// The fields of `/proc/<pid>/stat` a sweep needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcStat {
    pid: i32,
    state: char,
    ppid: i32,
    pgrp: i32,
}

/// Parses `/proc/<pid>/stat`. The command name sits in parentheses and may
/// itself hold spaces and parentheses, so fields are counted from the last
/// `)`.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let (head, rest) = text.rsplit_once(')')?;
    let pid = head.split_once(" (")?.0.trim().parse().ok()?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(ProcStat {
        pid,
        state,
        ppid,
        pgrp,
    })
}

/// Every process in group `pgid` but its leader, as `/proc` shows it now.
fn group_members(pgid: i32) -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let entry = entry.ok()?;
        let name = entry.file_name();
        let pid: i32 = name.to_str()?.parse().ok()?;
        if pid == pgid {
            return None;
        }
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(&text).filter(|stat| stat.pgrp == pgid)
    })
    .collect()
}

/// After the group of `leader` was sent `SIGKILL`: reaps the members that
/// became our zombie children, until no member but the (unreaped) leader is
/// left or `deadline` passes. Returns how many it reaped.
///
/// Members still alive are dying (SIGKILL cannot be caught) or are waiting
/// for their dead parent to hand them over; the sweep polls `/proc` with a
/// short, growing pause, as no event announces a re-parented orphan's end.
pub(crate) async fn sweep_group(leader: u32, deadline: Duration) -> usize {
    let Ok(pgid) = i32::try_from(leader) else {
        return 0;
    };
    let me = getpid().as_raw_nonzero().get();
    let give_up = tokio::time::Instant::now() + deadline;
    let mut pause = Duration::from_micros(500);
    let mut reaped = 0;
    loop {
        let members = group_members(pgid);
        if members.is_empty() {
            return reaped;
        }
        for member in &members {
            if member.ppid == me && member.state == 'Z' {
                reaped += usize::from(reap(member.pid));
            }
        }
        if tokio::time::Instant::now() >= give_up {
            tracing::warn!(
                pgid,
                left = members.len(),
                "process group still has members after the sweep deadline"
            );
            return reaped;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Reaps one zombie child that is not a group leader we manage.
fn reap(pid: i32) -> bool {
    let Some(pid) = Pid::from_raw(pid) else {
        return false;
    };
    matches!(waitpid(Some(pid), WaitOptions::NOHANG), Ok(Some(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_names() {
        let text = "4242 (we ird) (name)) S 17 4200 4200 0 -1 4194560 0 0";
        assert_eq!(
            parse_stat(text),
            Some(ProcStat {
                pid: 4242,
                state: 'S',
                ppid: 17,
                pgrp: 4200
            })
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("12 (x"), None);
        assert_eq!(parse_stat("x (y) S 1 2"), None);
    }

    #[test]
    fn reads_own_stat() {
        let me = getpid().as_raw_nonzero().get();
        let text = std::fs::read_to_string("/proc/self/stat").unwrap();
        let stat = parse_stat(&text).unwrap();
        assert_eq!(stat.pid, me);
    }
}
