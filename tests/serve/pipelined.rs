//! A burst of pipelined requests, far more than the server reads before it
//! yields to the requests it has started, is answered in full, and the
//! waits pending among them hold nothing up.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::harness::{Server, assert_no_children};

/// Several times the 128 lines the server reads between yields.
const POLLS: usize = 1000;
const WAITS: usize = 300;

#[test]
fn a_burst_with_pending_waits_is_answered_in_full() {
    let mut server = Server::start(&[]);
    let handle = server.spawn_argv(&["sleep", "300"])["handle_id"].clone();
    let mut burst = Vec::new();
    for i in 0..POLLS + WAITS {
        // A wait every fourth line, up to WAITS of them.
        let request = if i % 4 == 0 && i / 4 < WAITS {
            json!({"id": format!("w{i}"), "op": "wait", "handle_id": handle})
        } else {
            json!({"id": format!("p{i}"), "op": "poll", "handle_id": handle})
        };
        burst.extend(serde_json::to_vec(&request).unwrap());
        burst.push(b'\n');
    }
    // One write: the server finds the lines already buffered.
    burst.pop();
    server.io.send_line(&burst);

    // Every poll is answered while every wait is still pending.
    let mut polls = HashSet::new();
    while polls.len() < POLLS {
        let response = server.io.next_response();
        let id = response["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with('p'), "a wait answered early: {response}");
        assert_eq!(response["result"]["status"], "running", "{response}");
        assert!(polls.insert(id), "answered twice: {response}");
    }

    server.io.call("kill", json!({"handle_id": handle}));
    let mut waits = HashSet::new();
    while waits.len() < WAITS {
        let response: Value = server.io.next_response();
        assert_eq!(response["result"]["status"], "killed", "{response}");
        assert!(
            waits.insert(response["id"].clone()),
            "answered twice: {response}"
        );
    }
    assert_no_children(server.pid());
}
