//! The `/proc` reader the other tests rely on reads what it should.

#[path = "support/proc.rs"]
mod support;

use support::{ProcStat, parse_stat};

#[test]
fn finds_the_fields_after_the_last_parenthesis() {
    // A command name may hold spaces and parentheses of its own.
    let line = "4242 (a (b) c) S 1 4240 4240 0 -1 4194560 120 0 0 0";
    assert_eq!(
        parse_stat(line),
        Some(ProcStat {
            pid: 4242,
            comm: "a (b) c".to_owned(),
            state: 'S',
            ppid: 1,
            pgrp: 4240,
        })
    );
}

#[test]
fn rejects_a_truncated_line() {
    assert_eq!(parse_stat("4242 (sleep) S 1"), None);
    assert_eq!(parse_stat("4242 sleep S 1 2"), None);
}

#[test]
fn reads_this_process() {
    let me = support::stat(std::process::id()).expect("/proc shows this process");
    assert_eq!(me.pid, std::process::id());
    assert!(support::is_alive(me.pid));
    assert!(!support::is_doomed(me.pid));
}
