//! A server that runs out of file descriptors refuses spawns with a clear,
//! typed error, keeps answering, loses none of the processes it already
//! runs, spawns again once descriptors are free, and leaves nothing behind.

use crate::harness::{Server, assert_all_gone, assert_no_children, pid_of};
use serde_json::json;

#[test]
fn spawns_past_the_descriptor_limit_fail_typed_and_the_server_recovers() {
    // Each child costs the server 3 descriptors: 48 runs out after a few
    // dozen, whatever the runtime itself holds.
    let mut server = Server::start_with_nofile(48, &[]);
    let mut started = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..40 {
        let response = server
            .io
            .request("spawn", json!({"argv": ["sleep", "300"]}));
        if response["ok"] == true {
            started.push(response["result"].clone());
        } else {
            refused.push(response["error"].clone());
        }
    }
    assert!(
        !started.is_empty(),
        "nothing started under the limit: {refused:?}"
    );
    assert!(!refused.is_empty(), "40 spawns all fit in 48 descriptors");
    for error in &refused {
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("Too many open files") || message.contains("os error 24"),
            "not a descriptor error: {error}"
        );
        assert_eq!(error["kind"], "spawn_failed", "{error}");
    }

    // Still answering, and still holding every process it started.
    let listed = server.io.call("list", json!({}));
    let running = listed["handles"].as_array().map_or(0, |handles| {
        handles.iter().filter(|h| h["status"] == "running").count()
    });
    assert_eq!(running, started.len(), "{listed}");

    // Freeing descriptors makes room again.
    let first = started[0]["handle_id"].clone();
    let killed = server.io.call("kill", json!({"handle_id": first}));
    assert_eq!(killed["status"], "killed");
    server.io.call("release", json!({"handle_id": first}));
    let again = server.io.call("spawn", json!({"argv": ["true"]}));
    let done = server
        .io
        .call("wait", json!({"handle_id": again["handle_id"]}));
    assert_eq!(done["exit_code"], 0);

    let pids: Vec<u32> = started.iter().map(pid_of).collect();
    let server_pid = server.pid();
    server.io.close();
    server.wait_exit();
    assert_all_gone(server_pid, &pids);
    assert_no_children(server_pid);
}
