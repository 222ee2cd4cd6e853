//! Every op of `procward serve`, through the real binary's stdin/stdout.

use serde_json::json;

use crate::harness;
use crate::harness::{Server, assert_all_gone, assert_no_children, pid_of};

#[test]
fn spawn_returns_the_original_keys() {
    let mut server = Server::start(&[]);
    let spawned = server.spawn_argv(&["sleep", "300"]);
    let handle = spawned["handle_id"].as_str().unwrap().to_owned();
    assert!(handle.starts_with("psh-"), "{spawned}");
    assert_eq!(spawned["status"], "running");
    assert_eq!(spawned["command"], "sleep 300");
    assert!(spawned["pid"].as_u64().unwrap() > 0);
    assert!(spawned["started_at"].as_str().unwrap().ends_with('Z'));
    server.io.call("kill", json!({"handle_id": handle}));
    assert_no_children(server.pid());
}

#[test]
fn poll_and_wait_report_exit_and_output() {
    let mut server = Server::start(&[]);
    let spawned = server.io.call(
        "spawn",
        json!({"command": "echo out; echo err >&2; exit 3", "mode": "shell"}),
    );
    let handle = &spawned["handle_id"];
    let done = server.io.call("wait", json!({"handle_id": handle}));
    assert_eq!(done["status"], "exited");
    assert_eq!(done["running"], false);
    assert_eq!(done["timed_out"], false);
    assert_eq!(done["exit_code"], 3);
    assert_eq!(done["signal"], json!(null));
    assert_eq!(done["stdout"], "out\n");
    assert_eq!(done["stderr"], "err\n");
    assert_eq!(done["stdout_truncated"], false);
    assert_eq!(done["stdout_total_bytes"], 4);
    assert_eq!(done["stderr_total_bytes"], 4);
    assert!(done["ended_at"].is_string());

    let polled = server.io.call("poll", json!({"handle_id": handle}));
    for key in [
        "handle_id",
        "status",
        "running",
        "command",
        "started_at",
        "pid",
        "exit_code",
        "stdout",
        "stderr",
        "ended_at",
        "signal",
        "stdout_truncated",
        "stderr_truncated",
        "stdout_total_bytes",
        "stderr_total_bytes",
    ] {
        assert_eq!(polled[key], done[key], "{key}");
    }
    assert_no_children(server.pid());
}

#[test]
fn poll_of_a_running_process_has_null_exit_code() {
    let mut server = Server::start(&[]);
    let spawned = server.spawn_argv(&["sleep", "300"]);
    let polled = server
        .io
        .call("poll", json!({"handle_id": spawned["handle_id"]}));
    assert_eq!(polled["status"], "running");
    assert_eq!(polled["running"], true);
    assert_eq!(polled["exit_code"], json!(null));
    assert_eq!(polled["ended_at"], json!(null));
    server
        .io
        .call("kill", json!({"handle_id": spawned["handle_id"]}));
    assert_no_children(server.pid());
}

#[test]
fn spawn_takes_cwd_env_and_an_argv_without_a_shell() {
    let mut server = Server::start(&[]);
    let spawned = server.io.call(
        "spawn",
        json!({"argv": ["sh", "-c", "pwd; echo \"$GREETING\"", "$HOME"], "cwd": "/",
               "env": {"GREETING": "hi there"}, "mode": "argv"}),
    );
    let done = server
        .io
        .call("wait", json!({"handle_id": spawned["handle_id"]}));
    assert_eq!(done["stdout"], "/\nhi there\n");
    assert_eq!(done["exit_code"], 0);
}

#[test]
fn a_spawn_timeout_kills_with_exit_code_minus_one() {
    let mut server = Server::start(&[]);
    let spawned = server.io.call(
        "spawn",
        json!({"argv": ["sleep", "300"], "timeout_ms": 200}),
    );
    let done = server
        .io
        .call("wait", json!({"handle_id": spawned["handle_id"]}));
    assert_eq!(done["status"], "timed_out");
    assert_eq!(done["exit_code"], -1);
    assert_eq!(done["signal"], 9);
    // As the original registry said: timed out, whoever's timeout it was.
    assert_eq!(done["timed_out"], true);
    assert_eq!(
        done["wait_timed_out"], false,
        "the wait itself did not time out"
    );
    assert_no_children(server.pid());
}

#[test]
fn a_zero_timeout_does_not_apply() {
    let mut server = Server::start(&[]);
    let spawned = server
        .io
        .call("spawn", json!({"argv": ["true"], "timeout": 0}));
    let done = server.io.call(
        "wait",
        json!({"handle_id": spawned["handle_id"], "timeout": 0}),
    );
    assert_eq!(done["status"], "exited");
    assert_eq!(done["exit_code"], 0);
}

#[test]
fn a_wait_timeout_leaves_the_process_running() {
    let mut server = Server::start(&[]);
    let spawned = server.spawn_argv(&["sleep", "300"]);
    let handle = &spawned["handle_id"];
    let waited = server
        .io
        .call("wait", json!({"handle_id": handle, "timeout_ms": 100}));
    assert_eq!(waited["timed_out"], true);
    assert_eq!(waited["running"], true);
    assert_eq!(waited["status"], "running");
    assert_eq!(waited["exit_code"], json!(null));
    let polled = server.io.call("poll", json!({"handle_id": handle}));
    assert_eq!(polled["status"], "running");
    server.io.call("kill", json!({"handle_id": handle}));
    assert_no_children(server.pid());
}

#[test]
fn kill_defaults_to_sigkill() {
    let mut server = Server::start(&[]);
    let spawned = server.spawn_argv(&["sleep", "300"]);
    let killed = server
        .io
        .call("kill", json!({"handle_id": spawned["handle_id"]}));
    assert_eq!(killed["success"], true);
    assert_eq!(killed["status"], "killed");
    assert_eq!(killed["exit_code"], -1);
    assert_eq!(killed["signal"], 9);
    let polled = server
        .io
        .call("poll", json!({"handle_id": spawned["handle_id"]}));
    assert_eq!(polled["status"], "killed");
    assert_eq!(polled["exit_code"], -1);
    assert_no_children(server.pid());
}

#[test]
fn kill_takes_a_signal_by_name_or_number() {
    let mut server = Server::start(&[]);
    for signal in [json!("TERM"), json!("SIGINT"), json!(15)] {
        let spawned = server.spawn_argv(&["sleep", "300"]);
        let killed = server.io.call(
            "kill",
            json!({"handle_id": spawned["handle_id"], "signal": signal, "grace_ms": 10000}),
        );
        assert_eq!(killed["status"], "killed", "{signal}");
        let expected = if signal == "SIGINT" { 2 } else { 15 };
        assert_eq!(killed["signal"], expected, "{signal}");
        assert_eq!(killed["exit_code"], -1);
    }
    assert_no_children(server.pid());
}

#[test]
fn kill_escalates_after_the_grace() {
    let mut server = Server::start(&[]);
    let spawned = server.io.call(
        "spawn",
        json!({"command": "trap '' TERM; echo ready; while :; do sleep 1; done"}),
    );
    let handle = &spawned["handle_id"];
    // The trap is set once the shell has written "ready".
    harness::wait_until("the TERM trap", || {
        server.io.call("poll", json!({"handle_id": handle}))["stdout"] == "ready\n"
    });
    let killed = server.io.call(
        "kill",
        json!({"handle_id": handle, "signal": "TERM", "grace_ms": 100}),
    );
    assert_eq!(killed["status"], "killed");
    assert_eq!(killed["signal"], 9);
    assert_no_children(server.pid());
}

#[test]
fn kill_of_a_finished_handle_is_a_no_op() {
    let mut server = Server::start(&[]);
    let spawned = server.spawn_argv(&["true"]);
    server
        .io
        .call("wait", json!({"handle_id": spawned["handle_id"]}));
    let killed = server
        .io
        .call("kill", json!({"handle_id": spawned["handle_id"]}));
    assert_eq!(killed["success"], true);
    assert_eq!(killed["status"], "exited");
    assert_eq!(killed["exit_code"], 0);
}

#[test]
fn release_forgets_and_kills() {
    let mut server = Server::start(&[]);
    let spawned = server
        .io
        .call("spawn", json!({"command": "sleep 300 & sleep 300; wait"}));
    let handle = &spawned["handle_id"];
    let leader = pid_of(&spawned);
    harness::wait_until("the shell's children", || {
        harness::children_of(leader).len() == 2
    });
    let mut tree = harness::children_of(leader);
    tree.push(leader);
    let released = server.io.call("release", json!({"handle_id": handle}));
    assert_eq!(released["released"], true);
    assert_all_gone(server.pid(), &tree);
    let error = server.io.fail("poll", json!({"handle_id": handle}));
    assert_eq!(error["kind"], "unknown_handle");
    let again = server.io.call("release", json!({"handle_id": handle}));
    assert_eq!(again["released"], false);
    assert_no_children(server.pid());
}

#[test]
fn list_returns_the_handles_and_filters_by_status() {
    let mut server = Server::start(&[]);
    let done = server.spawn_argv(&["true"]);
    server
        .io
        .call("wait", json!({"handle_id": done["handle_id"]}));
    let running = server.spawn_argv(&["sleep", "300"]);

    let all = server.io.call("list", json!({}));
    let handles = all["handles"].as_array().unwrap();
    assert_eq!(handles.len(), 2);
    assert_eq!(handles[0]["handle_id"], done["handle_id"]);
    assert_eq!(handles[0]["status"], "exited");
    assert_eq!(handles[1]["handle_id"], running["handle_id"]);
    assert_eq!(handles[1]["running"], true);
    assert_eq!(handles[1]["command"], "sleep 300");

    let only_running = server.io.call("list", json!({"status": "running"}));
    let handles = only_running["handles"].as_array().unwrap();
    assert_eq!(handles.len(), 1);
    assert_eq!(handles[0]["handle_id"], running["handle_id"]);

    server
        .io
        .call("kill", json!({"handle_id": running["handle_id"]}));
    assert_no_children(server.pid());
}

#[test]
fn a_program_that_does_not_exist_fails_to_spawn() {
    let mut server = Server::start(&[]);
    let error = server
        .io
        .fail("spawn", json!({"argv": ["/nonexistent/procward-test"]}));
    assert_eq!(error["kind"], "spawn_failed");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/procward-test"),
        "{error}"
    );
    let error = server.io.fail(
        "spawn",
        json!({"argv": ["true"], "cwd": "/nonexistent/dir"}),
    );
    assert_eq!(error["kind"], "spawn_failed");
}

#[test]
fn owners_list_kill_and_release_together() {
    let mut server = Server::start(&[]);
    let spawn = |server: &mut Server, owner: &str| {
        server
            .io
            .call("spawn", json!({"argv": ["sleep", "300"], "owner": owner}))["handle_id"]
            .clone()
    };
    let a1 = spawn(&mut server, "a");
    let a2 = spawn(&mut server, "a");
    let b = spawn(&mut server, "b");

    let listed = server.io.call("list", json!({"owner": "a"}));
    let handles = listed["handles"].as_array().unwrap();
    assert_eq!(handles.len(), 2);
    assert!(handles.iter().all(|h| h["owner"] == "a"));
    let polled = server.io.call("poll", json!({"handle_id": b}));
    assert_eq!(polled["owner"], "b");

    let killed = server
        .io
        .call("kill_owner", json!({"owner": "a", "signal": "TERM"}));
    assert_eq!(killed["killed"], 2);
    for handle in [&a1, &a2] {
        let polled = server.io.call("poll", json!({"handle_id": handle}));
        assert_eq!(polled["status"], "killed");
    }
    let running = server.io.call("list", json!({"status": "running"}));
    assert_eq!(running["handles"].as_array().unwrap().len(), 1);

    let released = server.io.call("release_owner", json!({"owner": "b"}));
    assert_eq!(released["released"], 1);
    let error = server.io.fail("poll", json!({"handle_id": b}));
    assert_eq!(error["kind"], "unknown_handle");
    let error = server.io.fail("kill_owner", json!({}));
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("missing `owner`")
    );
    assert_no_children(server.pid());
}

#[test]
fn an_evicted_handle_answers_from_its_receipt() {
    let mut server = Server::start(&["--max-handles", "2"]);
    let first = server.io.call("spawn", json!({"command": "echo first"}));
    let done = server
        .io
        .call("wait", json!({"handle_id": first["handle_id"]}));
    assert_eq!(done["evicted"], false);
    for _ in 0..2 {
        let next = server.spawn_argv(&["true"]);
        server
            .io
            .call("wait", json!({"handle_id": next["handle_id"]}));
    }
    let receipt = server
        .io
        .call("poll", json!({"handle_id": first["handle_id"]}));
    assert_eq!(receipt["evicted"], true, "{receipt}");
    assert_eq!(receipt["status"], "exited");
    assert_eq!(receipt["exit_code"], 0);
    assert_eq!(receipt["stdout"], "");
    assert_eq!(receipt["stdout_total_bytes"], 6);
    let listed = server.io.call("list", json!({}));
    let evicted: Vec<_> = listed["handles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["evicted"] == true)
        .collect();
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0]["handle_id"], first["handle_id"]);
}

#[test]
fn the_id_is_echoed_whatever_its_type() {
    let mut server = Server::start(&[]);
    for id in [
        json!("abc"),
        json!(7),
        json!(1.5),
        json!({"k": [1]}),
        json!(null),
    ] {
        server.io.send(&json!({"id": id, "op": "list"}));
        let response = server.io.next_response();
        assert_eq!(response["id"], id);
        assert_eq!(response["ok"], true);
    }
}

#[test]
fn stdin_given_at_spawn_reaches_the_child() {
    let mut server = Server::start(&[]);
    for (stdin, expected) in [
        (json!({"text": "hello\n"}), "hello\n"),
        (json!({"base64": "aGk="}), "hi"),
        (json!("null"), ""),
    ] {
        let spawned = server
            .io
            .call("spawn", json!({"argv": ["cat"], "stdin": stdin}));
        let done = server
            .io
            .call("wait", json!({"handle_id": spawned["handle_id"]}));
        assert_eq!(done["stdout"], expected, "{stdin}");
        assert_eq!(done["exit_code"], 0);
    }
}

#[test]
fn write_and_close_stdin_stream_into_a_pipe() {
    let mut server = Server::start(&[]);
    let spawned = server
        .io
        .call("spawn", json!({"argv": ["cat"], "stdin": "pipe"}));
    let handle = &spawned["handle_id"];
    let written = server
        .io
        .call("write", json!({"handle_id": handle, "data": "abc"}));
    assert_eq!(written["written"], 3);
    server.io.call(
        "write",
        json!({"handle_id": handle, "data": {"base64": "/wA="}}),
    );
    let closed = server.io.call("close_stdin", json!({"handle_id": handle}));
    assert_eq!(closed["closed"], true);
    let error = server
        .io
        .fail("write", json!({"handle_id": handle, "data": "late"}));
    assert_eq!(error["kind"], "invalid_request");
    let done = server.io.call("wait", json!({"handle_id": handle}));
    assert_eq!(done["exit_code"], 0);
    assert_eq!(done["stdout_total_bytes"], 5);
    let raw = server
        .io
        .call("read", json!({"handle_id": handle, "encoding": "base64"}));
    assert_eq!(raw["data"], "YWJj/wA=", "exact bytes: abc ff 00");
    assert_eq!(raw["complete"], true);
}

#[test]
fn write_to_a_process_without_a_piped_stdin_is_refused() {
    let mut server = Server::start(&[]);
    let spawned = server.spawn_argv(&["sleep", "300"]);
    let handle = &spawned["handle_id"];
    let error = server
        .io
        .fail("write", json!({"handle_id": handle, "data": "x"}));
    assert_eq!(error["kind"], "invalid_request");
    assert!(
        error["message"].as_str().unwrap().contains("not a pipe"),
        "{error}"
    );
    let error = server.io.fail("write", json!({"handle_id": handle}));
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("missing `data`"),
        "{error}"
    );
    server.io.call("kill", json!({"handle_id": handle}));
    assert_no_children(server.pid());
}

#[test]
fn read_tails_output_from_an_offset() {
    let mut server = Server::start(&[]);
    let spawned = server
        .io
        .call("spawn", json!({"argv": ["cat"], "stdin": "pipe"}));
    let handle = spawned["handle_id"].clone();
    let read_at = |server: &mut Server, offset: u64| {
        server.io.call(
            "read",
            json!({"handle_id": handle, "stream": "stdout", "offset": offset}),
        )
    };

    server
        .io
        .call("write", json!({"handle_id": handle, "data": "hello "}));
    harness::wait_until("the first bytes", || {
        read_at(&mut server, 0)["total_bytes"] == 6
    });
    let first = read_at(&mut server, 0);
    assert_eq!(first["data"], "hello ");
    assert_eq!(first["offset"], 0);
    assert_eq!(first["next_offset"], 6);
    assert_eq!(first["complete"], false);
    assert_eq!(first["dropped"], false);

    // Half of a three-byte character: a text read stops before it.
    server.io.call(
        "write",
        json!({"handle_id": handle, "data": {"base64": "4oI="}}),
    );
    harness::wait_until("the half character", || {
        read_at(&mut server, 6)["total_bytes"] == 8
    });
    let half = read_at(&mut server, 6);
    assert_eq!(half["data"], "");
    assert_eq!(half["next_offset"], 6);

    server.io.call(
        "write",
        json!({"handle_id": handle, "data": {"base64": "rA=="}}),
    );
    server.io.call("close_stdin", json!({"handle_id": handle}));
    server.io.call("wait", json!({"handle_id": handle}));
    let rest = read_at(&mut server, 6);
    assert_eq!(rest["data"], "€");
    assert_eq!(rest["next_offset"], 9);
    assert_eq!(rest["complete"], true);

    let error = server
        .io
        .fail("read", json!({"handle_id": handle, "offset": 100}));
    assert_eq!(error["kind"], "invalid_request");
    let stderr = server
        .io
        .call("read", json!({"handle_id": handle, "stream": "stderr"}));
    assert_eq!(stderr["data"], "");
    assert_eq!(stderr["stream"], "stderr");
}

#[test]
fn a_profile_the_server_does_not_have_is_denied_by_policy() {
    let mut server = Server::start(&[]);
    let error = server.io.fail(
        "spawn",
        json!({"argv": ["true"], "sandbox_profile": "no-such-profile"}),
    );
    assert_eq!(error["kind"], "policy_denied", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no-such-profile"),
        "{error}"
    );
    assert!(harness::children_of(server.pid()).is_empty());
}

#[test]
fn kill_owner_ends_every_spawn_read_before_it() {
    let mut server = Server::start(&["--max-handles", "400"]);
    // 200 spawns and the kill in one burst, without waiting for answers.
    let spawn_ids: Vec<_> = (0..200)
        .map(|_| {
            server
                .io
                .send_op("spawn", json!({"argv": ["sleep", "300"], "owner": "d"}))
        })
        .collect();
    let kill = server.io.send_op("kill_owner", json!({"owner": "d"}));
    let killed = server.io.response_for(&kill);
    assert_eq!(killed["result"]["killed"], 200, "{killed}");
    for id in spawn_ids {
        let spawned = server.io.response_for(&id);
        let handle = &spawned["result"]["handle_id"];
        let polled = server.io.call("poll", json!({"handle_id": handle}));
        assert_eq!(polled["status"], "killed", "{polled}");
    }
    assert_no_children(server.pid());
}

#[test]
fn a_closed_owner_is_refused_until_reopened() {
    let mut server = Server::start(&[]);
    server.spawn_argv(&["true"]);
    let running = server.io.call(
        "spawn",
        json!({"argv": ["sleep", "300"], "owner": "session"}),
    );
    let killed = server
        .io
        .call("kill_owner", json!({"owner": "session", "close": true}));
    assert_eq!(killed["killed"], 1, "{killed}");
    let refused = server
        .io
        .fail("spawn", json!({"argv": ["true"], "owner": "session"}));
    assert_eq!(refused["kind"], "policy_denied", "{refused}");
    assert_eq!(refused["rule"], "owner_closed", "{refused}");
    let reopened = server.io.call("reopen_owner", json!({"owner": "session"}));
    assert_eq!(reopened["reopened"], true);
    let again = server.io.call(
        "spawn",
        json!({"argv": ["true"], "owner": "session", "wait": true}),
    );
    assert_eq!(again["exit_code"], 0, "{again}");
    let _ = running;
    assert_no_children(server.pid());
}
