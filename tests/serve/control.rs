//! Process control over the JSON protocol: limits at spawn, pause and
//! resume, resource usage, and the server's escapee hunting.

use procward::__test_support::procfs;
use serde_json::json;

use crate::harness::{Server, assert_no_children};

#[test]
fn limits_pause_resume_and_usage() {
    let mut server = Server::start(&[]);
    let spawned = server.io.call(
        "spawn",
        json!({"command": "ulimit -n; umask", "mode": "shell",
               "limits": {"open_files": 48, "umask": 18}}),
    );
    let done = server
        .io
        .call("wait", json!({"handle_id": spawned["handle_id"]}));
    assert_eq!(done["stdout"], "48\n0022\n");
    assert_eq!(done["paused"], false);
    // Unknown (null) unless a cgroup with the memory controller counted it.
    let rss = &done["usage"]["max_rss_kib"];
    assert!(rss.is_null() || rss.as_u64().unwrap() > 0, "{done}");
    assert!(
        matches!(
            done["containment"].as_str(),
            Some("cgroup" | "process_group")
        ),
        "{done}"
    );
    assert!(done["usage"]["user_time_ms"].is_number());

    let sleeper = server.spawn_argv(&["sleep", "300"]);
    let handle = &sleeper["handle_id"];
    let paused = server.io.call("pause", json!({"handle_id": handle}));
    assert_eq!(paused["status"], "running");
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["usage"], json!(null));
    let resumed = server.io.call("resume", json!({"handle_id": handle}));
    assert_eq!(resumed["paused"], false);
    server.io.call("kill", json!({"handle_id": handle}));
    assert_no_children(server.pid());
}

#[test]
fn the_server_hunts_setsid_escapees_by_default() {
    let mut server = Server::start(&[]);
    let spawned = server.io.call(
        "spawn",
        json!({"command": "setsid sh -c 'echo $$; exec sleep 300' & wait", "mode": "shell"}),
    );
    let handle = spawned["handle_id"].clone();
    // Read until the escapee's pid is printed.
    let escapee: u32 = loop {
        let polled = server.io.call("poll", json!({"handle_id": handle}));
        if let Some(line) = polled["stdout"].as_str().and_then(|s| s.lines().next()) {
            break line.trim().parse().unwrap();
        }
        let _ = server
            .io
            .call("wait", json!({"handle_id": handle, "timeout_ms": 20}));
    };
    server.io.call("kill", json!({"handle_id": handle}));
    let alive = i32::try_from(escapee).is_ok_and(|pid| {
        procfs::read_stat(pid, &mut String::new()).is_some_and(|stat| !stat.is_zombie())
    });
    assert!(!alive, "the setsid escapee {escapee} survived the kill");
    assert_no_children(server.pid());
}

#[test]
fn bad_limits_are_invalid_requests() {
    let mut server = Server::start(&[]);
    let error = server
        .io
        .fail("spawn", json!({"argv": ["true"], "limits": {"nice": 99}}));
    assert_eq!(error["kind"], "invalid_request");
    assert!(
        error["message"].as_str().unwrap().contains("nice"),
        "{error}"
    );
}
