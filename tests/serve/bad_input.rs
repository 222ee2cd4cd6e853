//! Bad input never stops the server: each bad line gets an error response
//! naming the problem (with the request's `id` when it could be read), and
//! the next request is served as usual.

use serde_json::{Value, json};

use crate::harness::{Server, assert_no_children};

/// Sends `line`, checks the error response, then checks the server still
/// answers.
fn rejects(server: &mut Server, line: &[u8], id: Value, kind: &str, says: &str) {
    server.io.send_line(line);
    let response = server.io.next_response();
    let shown = String::from_utf8_lossy(line);
    assert_eq!(response["ok"], false, "{shown}: {response}");
    assert_eq!(response["id"], id, "{shown}: {response}");
    assert_eq!(response["error"]["kind"], kind, "{shown}: {response}");
    let message = response["error"]["message"].as_str().expect("a message");
    assert!(
        message.contains(says),
        "{shown}: message {message:?} does not say {says:?}"
    );
    let alive = server.io.call("list", json!({}));
    assert!(alive["handles"].is_array());
}

#[test]
fn lines_that_are_not_requests() {
    let mut server = Server::start(&[]);
    let null = Value::Null;
    rejects(
        &mut server,
        b"not json",
        null.clone(),
        "parse_error",
        "not JSON",
    );
    rejects(
        &mut server,
        b"{\"id\": 1, \"op\": ",
        null.clone(),
        "parse_error",
        "not JSON",
    );
    rejects(&mut server, b"", null.clone(), "parse_error", "empty line");
    rejects(
        &mut server,
        b"\xff\xfe\x00",
        null.clone(),
        "parse_error",
        "not JSON",
    );
    rejects(
        &mut server,
        b"[1,2,3]",
        null.clone(),
        "invalid_request",
        "must be a JSON object, got an array",
    );
    rejects(
        &mut server,
        b"\"spawn\"",
        null.clone(),
        "invalid_request",
        "got a string",
    );
    rejects(
        &mut server,
        b"{\"id\": 5}",
        json!(5),
        "invalid_request",
        "missing `op`",
    );
    rejects(
        &mut server,
        b"{\"id\": 6, \"op\": 3}",
        json!(6),
        "invalid_request",
        "`op` must be a string",
    );
    rejects(
        &mut server,
        b"{\"id\": 7, \"op\": \"frobnicate\"}",
        json!(7),
        "unknown_op",
        "\"frobnicate\"",
    );
    // A raw NUL byte inside a JSON string is not JSON.
    rejects(
        &mut server,
        b"{\"id\": 8, \"op\": \"li\0st\"}",
        null,
        "parse_error",
        "not JSON",
    );
    rejects(
        &mut server,
        b"{\"id\": 9, \"op\": \"li\\u0000st\"}",
        json!(9),
        "unknown_op",
        "\\0",
    );
}

#[test]
fn a_line_over_the_cap_is_refused_and_skipped() {
    let mut server = Server::start(&["--max-line-bytes", "1024"]);
    let mut long = br#"{"id": 1, "op": "list", "pad": ""#.to_vec();
    long.extend(std::iter::repeat_n(b'x', 4096));
    long.extend(br#""}"#);
    rejects(
        &mut server,
        &long,
        Value::Null,
        "invalid_request",
        "limit of 1024 bytes",
    );
}

#[test]
fn the_default_cap_is_one_mebibyte() {
    let mut server = Server::start(&[]);
    let mut long = br#"{"id": 1, "op": "list", "pad": ""#.to_vec();
    long.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    long.extend(br#""}"#);
    rejects(
        &mut server,
        &long,
        Value::Null,
        "invalid_request",
        "limit of 1048576 bytes",
    );
}

#[test]
fn bad_spawn_parameters_name_the_field() {
    let mut server = Server::start(&[]);
    let cases = [
        (json!({}), "missing `argv`"),
        (
            json!({"argv": "echo hi"}),
            "`argv` must be an array of strings, got a string",
        ),
        (
            json!({"argv": ["echo", 1]}),
            "`argv[1]` must be a string, got a number",
        ),
        (json!({"argv": []}), "argv is empty"),
        (json!({"argv": [""]}), "argv[0]"),
        (json!({"argv": ["echo", "a\u{0}b"]}), "NUL"),
        (json!({"command": "echo \u{0}"}), "NUL"),
        (json!({"command": "   "}), "empty"),
        (json!({"argv": ["true"], "cwd": "/tm\u{0}p"}), "NUL"),
        (json!({"argv": ["true"], "env": {"A": "x\u{0}"}}), "NUL"),
        (
            json!({"argv": ["true"], "env": {"A": 1}}),
            "`env.A` must be a string",
        ),
        (
            json!({"argv": ["true"], "env": ["A=1"]}),
            "`env` must be an object of strings",
        ),
        (
            json!({"argv": ["true"], "timeout": -1}),
            "`timeout` must not be negative",
        ),
        (
            json!({"argv": ["true"], "timeout_ms": "100"}),
            "`timeout_ms` must be a whole number",
        ),
        (json!({"argv": ["true"], "timeout_ms": 1.5}), "whole number"),
        (
            json!({"argv": ["true"], "timeout": 1, "timeout_ms": 1}),
            "not both",
        ),
        (
            json!({"argv": ["true"], "output_cap": -4}),
            "`output_cap` must not be negative",
        ),
        (json!({"argv": ["true"], "mode": "exec"}), "`mode` must be"),
        (json!({"argv": ["true"], "command": "true"}), "not both"),
        (
            json!({"argv": ["true"], "cwd": 5}),
            "`cwd` must be a string",
        ),
    ];
    for (i, (params, says)) in cases.into_iter().enumerate() {
        let mut request = params.clone();
        request["id"] = json!(i);
        request["op"] = json!("spawn");
        let line = serde_json::to_vec(&request).unwrap();
        rejects(&mut server, &line, json!(i), "invalid_request", says);
    }
    assert_no_children(server.pid());
}

#[test]
fn bad_handle_parameters() {
    let mut server = Server::start(&[]);
    let spawned = server.spawn_argv(&["sleep", "300"]);
    let handle = spawned["handle_id"].clone();
    let cases = [
        (
            json!({"op": "poll"}),
            "invalid_request",
            "missing `handle_id`",
        ),
        (
            json!({"op": "poll", "handle_id": 12}),
            "invalid_request",
            "`handle_id` must be a string",
        ),
        (
            json!({"op": "poll", "handle_id": "psh-1-999999"}),
            "unknown_handle",
            "unknown or expired handle",
        ),
        (
            json!({"op": "wait", "handle_id": "bogus"}),
            "unknown_handle",
            "bogus",
        ),
        (
            json!({"op": "wait", "handle_id": handle, "timeout_ms": -5}),
            "invalid_request",
            "negative",
        ),
        (
            json!({"op": "kill", "handle_id": handle, "signal": "SIGFOO"}),
            "invalid_request",
            "SIGFOO",
        ),
        (
            json!({"op": "kill", "handle_id": handle, "signal": 0}),
            "invalid_request",
            "number of a named signal",
        ),
        (
            json!({"op": "kill", "handle_id": handle, "signal": 9.5}),
            "invalid_request",
            "number of a named signal",
        ),
        (
            json!({"op": "kill", "handle_id": handle, "grace_ms": -1}),
            "invalid_request",
            "`grace_ms` must not be negative",
        ),
        (
            json!({"op": "kill", "handle_id": handle, "signal": [9]}),
            "invalid_request",
            "`signal` must be",
        ),
        (
            json!({"op": "list", "status": "zombie"}),
            "invalid_request",
            "`status` must be one of",
        ),
        (
            json!({"op": "release", "handle_id": null}),
            "invalid_request",
            "missing `handle_id`",
        ),
    ];
    for (i, (mut request, kind, says)) in cases.into_iter().enumerate() {
        request["id"] = json!(i);
        let line = serde_json::to_vec(&request).unwrap();
        rejects(&mut server, &line, json!(i), kind, says);
    }
    // None of the bad kills touched the process.
    let polled = server.io.call("poll", json!({"handle_id": handle}));
    assert_eq!(polled["status"], "running");
    server.io.call("kill", json!({"handle_id": handle}));
    assert_no_children(server.pid());
}
