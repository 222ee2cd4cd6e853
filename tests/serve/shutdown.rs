//! On end of stdin, SIGTERM or SIGINT the server stops reading, kills every
//! running process tree, answers what is pending, and exits 0; nothing it
//! started outlives it.

use rustix::process::Signal;
use serde_json::json;

use crate::harness;
use crate::harness::{Server, assert_all_gone, children_of, pid_of, wait_until};

/// Spawns a shell with two background children and returns the pids of
/// the whole tree once they all exist.
fn spawn_tree(server: &mut Server, script: &str) -> Vec<u32> {
    let spawned = server.io.call("spawn", json!({"command": script}));
    let leader = pid_of(&spawned);
    wait_until("the tree to start", || children_of(leader).len() == 2);
    let mut tree = children_of(leader);
    tree.push(leader);
    tree
}

fn shuts_down_cleanly(stop: impl FnOnce(&mut Server)) {
    let mut server = Server::start(&[]);
    let mut pids = spawn_tree(&mut server, "sleep 300 & sleep 300 & wait");
    pids.extend(spawn_tree(
        &mut server,
        "(sleep 300; echo) & sleep 300 & wait",
    ));
    let sleeper = server.spawn_argv(&["sleep", "300"]);
    pids.push(pid_of(&sleeper));
    // A wait still pending at shutdown is answered before the server exits.
    server
        .io
        .send(&json!({"id": "pending", "op": "wait", "handle_id": sleeper["handle_id"]}));
    let finished = server.spawn_argv(&["true"]);
    server
        .io
        .call("wait", json!({"handle_id": finished["handle_id"]}));

    stop(&mut server);
    let rest = server.io.read_to_end();
    let pending = rest
        .iter()
        .find(|r| r["id"] == "pending")
        .expect("the pending wait was answered");
    assert_eq!(pending["ok"], true, "{pending}");
    assert_eq!(pending["result"]["status"], "killed");
    let status = server.wait_exit();
    assert!(status.success(), "exit status {status:?}");
    assert_all_gone(server.pid(), &pids);
}

#[test]
fn eof_on_stdin_kills_everything_and_exits_zero() {
    shuts_down_cleanly(|server| server.io.close());
}

#[test]
fn sigterm_kills_everything_and_exits_zero() {
    shuts_down_cleanly(|server| server.signal(Signal::TERM));
}

#[test]
fn sigint_kills_everything_and_exits_zero() {
    shuts_down_cleanly(|server| server.signal(Signal::INT));
}

#[test]
fn a_process_ignoring_sigterm_is_killed_after_the_shutdown_grace() {
    let mut server = Server::start(&["--shutdown-grace-ms", "200"]);
    let spawned = server.io.call(
        "spawn",
        json!({"command": "trap '' TERM; echo ready; while :; do sleep 1; done"}),
    );
    let handle = &spawned["handle_id"];
    wait_until("the TERM trap", || {
        server.io.call("poll", json!({"handle_id": handle}))["stdout"] == "ready\n"
    });
    server
        .io
        .send(&json!({"id": "w", "op": "wait", "handle_id": handle}));
    server.io.close();
    let rest = server.io.read_to_end();
    let wait = rest.iter().find(|r| r["id"] == "w").expect("wait answered");
    assert_eq!(wait["result"]["status"], "killed");
    assert_eq!(wait["result"]["signal"], 9, "SIGKILL after the grace");
    assert!(server.wait_exit().success());
    assert_all_gone(server.pid(), &[pid_of(&spawned)]);
}

#[test]
fn eof_right_after_requests_still_answers_them() {
    let mut server = Server::start(&[]);
    server
        .io
        .send_line(br#"{"id": 1, "op": "spawn", "argv": ["echo", "hi"]}"#);
    server.io.send_line(br#"{"id": 2, "op": "list"}"#);
    server.io.send_line(b"nonsense");
    server.io.close();
    let rest = server.io.read_to_end();
    assert_eq!(rest.len(), 3, "{rest:?}");
    for id in [json!(1), json!(2), json!(null)] {
        assert!(rest.iter().any(|r| r["id"] == id), "{id} in {rest:?}");
    }
    assert!(server.wait_exit().success());
    // A spawn read before the end of input is carried out, then killed.
    let spawned = rest.iter().find(|r| r["id"] == 1).expect("spawn answered");
    assert_eq!(spawned["ok"], true, "{spawned}");
    assert_all_gone(server.pid(), &[pid_of(&spawned["result"])]);
}

#[test]
fn a_sigkilled_server_leaves_nothing_behind() {
    let mut server = Server::start(&[]);
    // A tree with a background child and an escapee that left the group.
    let pids = spawn_tree(&mut server, "sleep 300 & setsid sleep 300 & wait");
    let server_pid = server.pid();
    // No code of the server runs after this: its guard cleans up.
    server.signal(Signal::KILL);
    server.wait_exit();
    assert_all_gone(server_pid, &pids);
}

#[test]
fn without_a_guard_a_sigkilled_server_leaves_its_trees() {
    let mut server = Server::start(&["--no-guard"]);
    let pids = spawn_tree(&mut server, "sleep 300 & sleep 300 & wait");
    // Under cgroup containment the server's cgroup is left behind too.
    let cgroup = registry_cgroup_of(pids[0]);
    server.signal(Signal::KILL);
    server.wait_exit();
    // What the guard is for; the test ends what it started, by pid.
    assert!(pids.iter().all(|&pid| harness::alive(pid)), "{pids:?}");
    for &pid in &pids {
        harness::send_signal(pid, Signal::KILL);
    }
    if let Some(cgroup) = cgroup {
        let start = std::time::Instant::now();
        while std::fs::read_to_string(cgroup.join("cgroup.events"))
            .is_ok_and(|events| events.contains("populated 1"))
        {
            assert!(start.elapsed() < std::time::Duration::from_secs(30));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let tree = std::fs::read_dir(&cgroup).expect("the server's cgroup");
        for entry in tree.flatten().filter(|e| e.path().is_dir()) {
            std::fs::remove_dir(entry.path()).expect("remove a tree's cgroup");
        }
        std::fs::remove_dir(&cgroup).expect("remove the server's cgroup");
    }
}

/// The registry cgroup (`.../procward-<pid>-<n>`) that `pid` is in, if any.
fn registry_cgroup_of(pid: u32) -> Option<std::path::PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        after
            .starts_with("cgroup2 ")
            .then(|| before.split_whitespace().nth(4))?
    })?;
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = own.lines().find_map(|line| line.strip_prefix("0::"))?;
    let tree = std::path::Path::new(mount).join(path.trim_start_matches('/'));
    let parent = tree.parent()?;
    parent
        .file_name()?
        .to_str()?
        .starts_with("procward-")
        .then(|| parent.to_owned())
}
