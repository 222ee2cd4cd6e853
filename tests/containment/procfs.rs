//! The `/proc` reader the tests share with the library
//! (`procward::__test_support::procfs`) reads what they rely on.

use crate::support::{self, ProcStat, procfs};

#[test]
fn finds_the_fields_after_the_last_parenthesis() {
    // A command name may hold spaces and parentheses of its own.
    let line = "4242 (a (b) c) S 1 4240 4240 0 -1 4194560 120 0 0 0 7 3 0 0 20 0 1 0 98765 0 0";
    assert_eq!(
        procfs::parse_stat(line),
        Some(ProcStat {
            pid: 4242,
            state: 'S',
            ppid: 1,
            pgrp: 4240,
            session: 4240,
            start_time: 98765,
        })
    );
}

#[test]
fn rejects_a_truncated_line() {
    assert_eq!(procfs::parse_stat("4242 (sleep) S 1"), None);
    assert_eq!(procfs::parse_stat("4242 sleep S 1 2"), None);
}

#[test]
fn reads_this_process() {
    let me = std::process::id();
    let stat = support::stat(me).expect("/proc shows this process");
    assert_eq!(stat.pid, support::raw_pid(me));
    assert!(support::is_alive(me));
    assert!(!support::is_doomed(me));
}
