//! `procward serve` as a script written for the original registry, and a
//! hostile client, see it: timeouts, ids, repeated and unknown keys, and a
//! spawn that answers only when its process is done.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::harness;
use crate::harness::{Server, assert_no_children, pid_of};

/// The seed's `timeout_ms_auto_kills`: a spawn timeout shows in both
/// `status` and `timed_out`.
#[test]
fn timeout_ms_auto_kills() {
    let mut server = Server::start(&[]);
    let spawned = server.io.call(
        "spawn",
        json!({"argv": ["sh", "-c", "sleep 30"], "timeout_ms": 150}),
    );
    let done = server
        .io
        .call("wait", json!({"handle_id": spawned["handle_id"]}));
    assert_eq!(done["status"], "timed_out", "{done}");
    assert_eq!(done["timed_out"], true, "{done}");
    assert_eq!(done["wait_timed_out"], false, "{done}");
    assert_eq!(done["exit_code"], -1, "{done}");

    // The wait's own timeout: both true, and the process keeps running.
    let running = server.spawn_argv(&["sleep", "30"]);
    let waited = server.io.call(
        "wait",
        json!({"handle_id": running["handle_id"], "timeout_ms": 50}),
    );
    assert_eq!(waited["status"], "running", "{waited}");
    assert_eq!(waited["timed_out"], true, "{waited}");
    assert_eq!(waited["wait_timed_out"], true, "{waited}");
    server
        .io
        .call("kill", json!({"handle_id": running["handle_id"]}));
    // An exit of its own: neither.
    let quick = server.spawn_argv(&["true"]);
    let done = server
        .io
        .call("wait", json!({"handle_id": quick["handle_id"]}));
    assert_eq!(done["status"], "exited", "{done}");
    assert_eq!(done["timed_out"], false, "{done}");
    assert_eq!(done["wait_timed_out"], false, "{done}");
    assert_no_children(server.pid());
}

/// Sends `input` to a fresh server, closes its stdin, and returns its raw
/// output lines in the order written.
fn raw_session(input: &str) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_procward"))
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start procward");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input.as_bytes()).expect("write requests");
    drop(stdin);
    let mut output = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut output)
        .expect("read responses");
    assert!(child.wait().expect("wait for procward").success());
    output.lines().map(str::to_owned).collect()
}

#[test]
fn ids_are_echoed_exactly_as_sent() {
    let sent = [
        "123456789012345678901234567890",
        "18446744073709551616",
        "-0",
        "1e2",
        "1.50",
        "42",
        r#""a b""#,
        r#"[1,{"x":-0.0}]"#,
    ];
    let mut input = String::new();
    for id in sent {
        input.push_str(&format!("{{\"id\": {id}, \"op\": \"list\"}}\n"));
        input.push_str(&format!("{{\"id\": {id}, \"op\": \"frob\"}}\n"));
    }
    let lines = raw_session(&input);
    assert_eq!(lines.len(), sent.len() * 2, "{lines:#?}");
    for id in sent {
        for ok in ["true", "false"] {
            let start = format!("{{\"id\":{id},\"ok\":{ok},");
            assert!(
                lines.iter().any(|line| line.starts_with(&start)),
                "no line starts with {start}: {lines:#?}"
            );
        }
    }
}

#[test]
fn a_key_given_twice_is_refused_and_runs_nothing() {
    let mut server = Server::start(&[]);
    for line in [
        r#"{"id": 1, "op": "poll", "op": "spawn", "argv": ["sleep", "30"]}"#,
        r#"{"id": 2, "op": "spawn", "argv": ["sleep", "30"], "argv": ["true"]}"#,
        r#"{"id": 3, "op": "spawn", "argv": ["true"], "limits": {"nice": 19, "nice": -20}}"#,
        r#"{"id": 4, "op": "spawn", "argv": ["true"], "env": {"A": "1", "A": "2"}}"#,
    ] {
        server.io.send_line(line.as_bytes());
        let response = server.io.next_response();
        assert_eq!(response["ok"], false, "{line}: {response}");
        assert_eq!(response["error"]["kind"], "invalid_request", "{response}");
        let message = response["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("is given twice"), "{message}");
    }
    let listed = server.io.call("list", json!({}));
    assert_eq!(listed["handles"], json!([]), "something was spawned");
    assert_no_children(server.pid());
}

#[test]
fn unknown_parameters_are_refused_by_name() {
    let mut server = Server::start(&[]);
    for (op, params, key) in [
        (
            "spawn",
            json!({"argv": ["sleep", "30"], "sandbox_profle": "strict"}),
            "sandbox_profle",
        ),
        (
            "spawn",
            json!({"argv": ["sleep", "30"], "limits": {"cpu_secs": 1, "max_procs": 5}}),
            "cpu_secs",
        ),
        (
            "spawn",
            json!({"argv": ["sleep", "30"], "timeout_sec": 1}),
            "timeout_sec",
        ),
        ("list", json!({"ownr": "x"}), "ownr"),
        ("kill_owner", json!({"owner": "x", "grace": 5}), "grace"),
        (
            "poll",
            json!({"handle_id": "psh-1-1", "verbose": null}),
            "verbose",
        ),
    ] {
        let error = server.io.fail(op, params.clone());
        assert_eq!(error["kind"], "invalid_request", "{params}: {error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("unknown parameter \"{key}\"")),
            "{message}"
        );
    }
    assert_eq!(server.io.call("list", json!({}))["handles"], json!([]));

    // `max_bytes` is a known parameter of poll, wait and read.
    let spawned = server.io.call("spawn", json!({"argv": ["echo", "hi"]}));
    let handle = &spawned["handle_id"];
    server
        .io
        .call("wait", json!({"handle_id": handle, "max_bytes": 10}));
    server
        .io
        .call("poll", json!({"handle_id": handle, "max_bytes": 10}));
    server
        .io
        .call("read", json!({"handle_id": handle, "max_bytes": 10}));
    let error = server
        .io
        .fail("poll", json!({"handle_id": handle, "max_bytes": -1}));
    assert_eq!(error["kind"], "invalid_request", "{error}");
    assert_no_children(server.pid());
}

#[test]
fn spawn_with_wait_answers_once_the_process_is_done() {
    let mut server = Server::start(&[]);
    let done = server.io.call(
        "spawn",
        json!({"command": "echo hi; echo oops >&2; exit 3", "wait": true}),
    );
    assert_eq!(done["status"], "exited", "{done}");
    assert_eq!(done["exit_code"], 3, "{done}");
    assert_eq!(done["stdout"], "hi\n", "{done}");
    assert_eq!(done["stderr"], "oops\n", "{done}");
    assert_eq!(done["timed_out"], false, "{done}");
    // Without release the handle stays.
    let polled = server
        .io
        .call("poll", json!({"handle_id": done["handle_id"]}));
    assert_eq!(polled["exit_code"], 3);

    // With release: one line in, one line out, nothing left behind.
    let released = server.io.call(
        "spawn",
        json!({"argv": ["echo", "bye"], "wait": true, "release": true}),
    );
    assert_eq!(released["stdout"], "bye\n", "{released}");
    let error = server
        .io
        .fail("poll", json!({"handle_id": released["handle_id"]}));
    assert_eq!(error["kind"], "unknown_handle", "{error}");

    // A spawn timeout ends the wait too.
    let timed = server.io.call(
        "spawn",
        json!({"argv": ["sleep", "30"], "timeout_ms": 150, "wait": true, "release": true}),
    );
    assert_eq!(timed["status"], "timed_out", "{timed}");
    assert_eq!(timed["timed_out"], true, "{timed}");
    assert_eq!(timed["wait_timed_out"], false, "{timed}");

    // The wait's own timeout: the running snapshot, and the handle is kept
    // (release applies only to a terminal answer).
    let running = server.io.call(
        "spawn",
        json!({"argv": ["sleep", "30"], "wait": true, "wait_timeout_ms": 100, "release": true}),
    );
    assert_eq!(running["status"], "running", "{running}");
    assert_eq!(running["wait_timed_out"], true, "{running}");
    let pid = pid_of(&running);
    assert!(harness::alive(pid));
    let killed = server
        .io
        .call("kill", json!({"handle_id": running["handle_id"]}));
    assert_eq!(killed["status"], "killed");

    let error = server
        .io
        .fail("spawn", json!({"argv": ["true"], "release": true}));
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("`release` needs `wait`"),
        "{error}"
    );
    let listed = server.io.call("list", json!({}));
    let ids: Vec<&Value> = listed["handles"]
        .as_array()
        .map(|handles| handles.iter().map(|h| &h["handle_id"]).collect())
        .unwrap_or_default();
    assert!(!ids.contains(&&released["handle_id"]), "{listed}");
    assert!(!ids.contains(&&timed["handle_id"]), "{listed}");
    assert_no_children(server.pid());
}

#[test]
fn many_spawns_with_wait_and_release_leave_nothing() {
    let mut server = Server::start(&["--max-handles", "512"]);
    let ids: Vec<Value> = (0..200)
        .map(|n| {
            server.io.send_op(
                "spawn",
                json!({"argv": ["sh", "-c", format!("echo {n}")], "wait": true, "release": true}),
            )
        })
        .collect();
    for (n, id) in ids.iter().enumerate() {
        let response = server.io.response_for(id);
        assert_eq!(response["ok"], true, "{response}");
        assert_eq!(response["result"]["stdout"], format!("{n}\n"), "{response}");
        assert_eq!(response["result"]["evicted"], false, "{response}");
    }
    assert_eq!(server.io.call("list", json!({}))["handles"], json!([]));
    assert_no_children(server.pid());
}

#[test]
fn the_output_cap_ceiling_refuses_by_name_and_bounds_capture() {
    let mut server = Server::start(&["--max-output-cap", "1024", "--output-cap", "512"]);
    let error = server.io.fail(
        "spawn",
        json!({"argv": ["head", "-c", "5000", "/dev/zero"], "output_cap": 1025}),
    );
    assert_eq!(error["kind"], "invalid_request", "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("ceiling of 1024 bytes"), "{message}");
    assert!(message.contains("--max-output-cap"), "{message}");

    let done = server.io.call(
        "spawn",
        json!({"command": "head -c 5000 /dev/zero | tr '\\0' x", "output_cap": 1024, "wait": true}),
    );
    assert_eq!(done["stdout_total_bytes"], 5000, "{done}");
    assert_eq!(done["stdout_truncated"], true, "{done}");
    assert_eq!(done["stdout"].as_str().map(str::len), Some(1024), "{done}");
    assert_no_children(server.pid());

    let output = Command::new(env!("CARGO_BIN_EXE_procward"))
        .args(["serve", "--max-output-cap", "100", "--output-cap", "200"])
        .stdin(Stdio::null())
        .output()
        .expect("run procward");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--max-output-cap 100"), "{stderr}");
}

/// The input ends while a spawn waits for its process: the close kills
/// everything, that process too, and the spawn is answered with the
/// terminal snapshot (the server waits for spawns before it kills, so the
/// spawn kills its own process itself).
#[test]
fn a_spawn_with_wait_pending_when_the_input_ends_is_answered_killed() {
    let mut server = Server::start(&["--shutdown-grace-ms", "100"]);
    let ids: Vec<Value> = (0..20)
        .map(|_| {
            server
                .io
                .send_op("spawn", json!({"argv": ["sleep", "30"], "wait": true}))
        })
        .collect();
    let mut pids = Vec::new();
    harness::wait_until("the processes to run", || {
        let listed = server.io.call("list", json!({"status": "running"}));
        pids = listed["handles"]
            .as_array()
            .map(|handles| {
                handles
                    .iter()
                    .filter_map(|h| h["pid"].as_u64())
                    .map(|pid| pid as u32)
                    .collect()
            })
            .unwrap_or_default();
        pids.len() == ids.len()
    });
    let started = std::time::Instant::now();
    server.io.close();
    let rest = server.io.read_to_end();
    for id in &ids {
        let response = rest
            .iter()
            .find(|response| &response["id"] == id)
            .unwrap_or_else(|| panic!("no answer for {id}: {rest:?}"));
        assert_eq!(response["result"]["status"], "killed", "{response}");
        assert_eq!(response["result"]["signal"], 15, "{response}");
    }
    assert!(server.wait_exit().success());
    eprintln!(
        "20 spawns with wait answered at the close in {:?}",
        started.elapsed()
    );
    harness::assert_all_gone(server.pid(), &pids);
}
