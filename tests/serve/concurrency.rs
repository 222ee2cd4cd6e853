//! Requests run concurrently: a blocking `wait` never delays a `poll` or a
//! `kill` sent after it, and responses are matched by `id`.

use serde_json::json;

use crate::harness::{Server, assert_no_children};

#[test]
fn a_blocking_wait_does_not_delay_later_requests() {
    let mut server = Server::start(&[]);
    let spawned = server.spawn_argv(&["sleep", "300"]);
    let handle = spawned["handle_id"].clone();

    server
        .io
        .send(&json!({"id": "wait", "op": "wait", "handle_id": handle}));
    server
        .io
        .send(&json!({"id": "poll", "op": "poll", "handle_id": handle}));
    server.io.send(&json!({"id": "list", "op": "list"}));

    // The wait cannot answer before the kill below, so the first two
    // responses are the poll's and the list's, in some order.
    let first = server.io.next_response();
    let second = server.io.next_response();
    let mut ids = [first["id"].clone(), second["id"].clone()];
    ids.sort_by_key(|id| id.to_string());
    assert_eq!(ids, [json!("list"), json!("poll")]);
    let poll = if first["id"] == "poll" { first } else { second };
    assert_eq!(poll["result"]["status"], "running");

    server.io.send(
        &json!({"id": "kill", "op": "kill", "handle_id": handle, "signal": "TERM", "grace_ms": 5000}),
    );
    let kill = server.io.response_for(&json!("kill"));
    assert_eq!(kill["result"]["status"], "killed");
    let wait = server.io.response_for(&json!("wait"));
    assert_eq!(wait["ok"], true);
    assert_eq!(wait["result"]["status"], "killed");
    assert_eq!(wait["result"]["exit_code"], -1);
    assert_eq!(wait["result"]["signal"], 15);
    assert_no_children(server.pid());
}

#[test]
fn many_concurrent_waits_each_get_their_own_answer() {
    let mut server = Server::start(&[]);
    // The processes wait for a gate file, so every wait below is pending
    // at once; then they all finish together, in no particular order.
    let gate = std::env::temp_dir().join(format!("procward-gate-{}", std::process::id()));
    let _ = std::fs::remove_file(&gate);
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let script = format!(
                "while [ ! -e '{}' ]; do sleep 0.02; done; echo {i}",
                gate.display()
            );
            server
                .io
                .call("spawn", json!({"command": script, "mode": "shell"}))["handle_id"]
                .clone()
        })
        .collect();
    for (i, handle) in handles.iter().enumerate() {
        server
            .io
            .send(&json!({"id": i, "op": "wait", "handle_id": handle}));
    }
    // Answered while eight waits are pending.
    let listed = server.io.call("list", json!({"status": "running"}));
    assert_eq!(listed["handles"].as_array().unwrap().len(), 8);
    std::fs::write(&gate, b"").unwrap();
    for i in 0..handles.len() {
        let response = server.io.response_for(&json!(i));
        assert_eq!(response["result"]["status"], "exited");
        assert_eq!(response["result"]["stdout"], format!("{i}\n"));
    }
    let _ = std::fs::remove_file(&gate);
    assert_no_children(server.pid());
}

#[test]
fn large_responses_are_written_whole() {
    let mut server = Server::start(&[]);
    // Two processes with 1 MiB of output each, waited on together: their
    // response lines must not interleave.
    let a = server.io.call(
        "spawn",
        json!({"command": "head -c 1048576 /dev/zero | tr '\\0' a"}),
    );
    let b = server.io.call(
        "spawn",
        json!({"command": "head -c 1048576 /dev/zero | tr '\\0' b"}),
    );
    server
        .io
        .send(&json!({"id": "a", "op": "wait", "handle_id": a["handle_id"]}));
    server
        .io
        .send(&json!({"id": "b", "op": "wait", "handle_id": b["handle_id"]}));
    for (id, byte) in [("a", 'a'), ("b", 'b')] {
        let response = server.io.response_for(&json!(id));
        let stdout = response["result"]["stdout"].as_str().unwrap();
        assert_eq!(stdout.len(), 1_048_576);
        assert!(stdout.chars().all(|c| c == byte));
    }
    assert_no_children(server.pid());
}

#[test]
fn pipelined_writes_to_one_stdin_keep_their_order() {
    let mut server = Server::start(&[]);
    let spawned = server
        .io
        .call("spawn", json!({"argv": ["cat"], "stdin": "pipe"}));
    let handle = spawned["handle_id"].clone();
    // Sent back to back, without waiting for answers.
    let expected: String = (0..200).map(|i| format!("{i},")).collect();
    for i in 0..200 {
        server
            .io
            .send(&json!({"id": i, "op": "write", "handle_id": handle,
                               "data": format!("{i},")}));
    }
    server
        .io
        .send(&json!({"id": "close", "op": "close_stdin", "handle_id": handle}));
    let closed = server.io.response_for(&json!("close"));
    assert_eq!(closed["ok"], true, "{closed}");
    for i in 0..200 {
        assert_eq!(server.io.response_for(&json!(i))["ok"], true);
    }
    let done = server.io.call("wait", json!({"handle_id": handle}));
    assert_eq!(done["stdout"], expected);
    assert_eq!(done["exit_code"], 0);
    assert_no_children(server.pid());
}
