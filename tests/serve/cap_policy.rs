//! `procward serve --cap-policy`: the server evicts at the cap by default
//! (as it always did), and `refuse` answers `registry_full` instead.

use crate::harness::{Server, assert_no_children};
use serde_json::json;

#[test]
fn the_server_evicts_a_running_handle_by_default() {
    let mut server = Server::start(&["--max-handles", "1"]);
    let first = server.spawn_argv(&["sleep", "300"]);
    let second = server.spawn_argv(&["sleep", "300"]);
    let receipt = server
        .io
        .call("wait", json!({"handle_id": first["handle_id"]}));
    assert_eq!(receipt["status"], "killed", "{receipt}");
    assert_eq!(receipt["evicted"], true, "{receipt}");
    server
        .io
        .call("kill", json!({"handle_id": second["handle_id"]}));
    assert_no_children(server.pid());
}

#[test]
fn refuse_answers_registry_full_and_kills_nothing() {
    let mut server = Server::start(&["--max-handles", "1", "--cap-policy", "refuse"]);
    let first = server.spawn_argv(&["sleep", "300"]);
    let error = server.io.fail("spawn", json!({"argv": ["true"]}));
    assert_eq!(error["kind"], "registry_full", "{error}");
    let polled = server
        .io
        .call("poll", json!({"handle_id": first["handle_id"]}));
    assert_eq!(polled["status"], "running", "{polled}");
    server
        .io
        .call("kill", json!({"handle_id": first["handle_id"]}));
    assert_no_children(server.pid());
}
