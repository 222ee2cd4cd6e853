//! Fuzzing the server: arbitrary bytes and arbitrary JSON never make it
//! panic, and every line gets exactly one response line from the real
//! binary. The parser's own properties are unit tests beside it
//! (src/json/request.rs).

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::harness::Server;

const KINDS: &[&str] = &[
    "parse_error",
    "invalid_request",
    "unknown_op",
    "unknown_handle",
    "spawn_failed",
    "policy_denied",
    "internal",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// Objects shaped like requests to every op but `spawn` (which would start
/// programs), with arbitrary ids and parameters.
fn request_like() -> impl Strategy<Value = Value> {
    let op = prop_oneof![
        Just(json!("poll")),
        Just(json!("wait")),
        Just(json!("kill")),
        Just(json!("release")),
        Just(json!("list")),
        Just(json!("read")),
        Just(json!("close_stdin")),
        Just(json!("kill_owner")),
        Just(json!("release_owner")),
        any::<String>().prop_map(Value::from),
        json_value(),
    ];
    let key = prop_oneof![
        Just("handle_id".to_owned()),
        Just("timeout".to_owned()),
        Just("timeout_ms".to_owned()),
        Just("signal".to_owned()),
        Just("grace_ms".to_owned()),
        Just("status".to_owned()),
        Just("owner".to_owned()),
        any::<String>(),
    ];
    let handle = prop_oneof![
        Just(json!("psh-1-1")),
        "psh-[0-9a-f]{1,9}-[0-9]{1,21}".prop_map(Value::from),
        json_value(),
    ];
    (
        json_value(),
        op,
        prop::collection::vec((key, json_value()), 0..5),
        handle,
    )
        .prop_map(|(id, op, params, handle)| {
            let mut map: Map<String, Value> = params.into_iter().collect();
            map.insert("id".into(), id);
            map.insert("op".into(), op);
            map.entry("handle_id").or_insert(handle);
            // A wait on a real handle could block: these handles are never
            // real (nothing is spawned), and a timeout keeps it short anyway.
            Value::Object(map)
        })
}

/// A line of input that contains no `\n`.
fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200)
            .prop_map(|bytes| bytes.into_iter().filter(|b| *b != b'\n').collect()),
        json_value().prop_map(|v| serde_json::to_vec(&v).expect("encode")),
        request_like().prop_map(|v| serde_json::to_vec(&v).expect("encode")),
    ]
}

fn check_response(response: &Value) -> Result<(), TestCaseError> {
    let object = response
        .as_object()
        .ok_or_else(|| TestCaseError::fail(format!("response is not an object: {response}")))?;
    prop_assert!(object.contains_key("id"), "{response}");
    match object.get("ok") {
        Some(Value::Bool(true)) => prop_assert!(object["result"].is_object(), "{response}"),
        Some(Value::Bool(false)) => {
            let kind = object["error"]["kind"].as_str().unwrap_or_default();
            prop_assert!(KINDS.contains(&kind), "{response}");
            prop_assert!(object["error"]["message"].is_string(), "{response}");
        }
        _ => prop_assert!(false, "no ok flag: {response}"),
    }
    Ok(())
}

#[test]
fn the_server_answers_every_fuzzed_line_once() {
    let server = std::cell::RefCell::new(Server::start(&[]));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    let batch = prop::collection::vec(line(), 1..16);
    runner
        .run(&batch, |lines| {
            let mut server = server.borrow_mut();
            for line in &lines {
                server.io.send_line(line);
            }
            for _ in &lines {
                check_response(&server.io.next_response())?;
            }
            // Still serving, and nothing was answered twice.
            server.io.send(&json!({"id": "sentinel", "op": "list"}));
            let sentinel = server.io.next_response();
            prop_assert_eq!(&sentinel["id"], "sentinel");
            prop_assert_eq!(&sentinel["result"]["handles"], &json!([]));
            Ok(())
        })
        .unwrap();
    let mut server = server.into_inner();
    server.io.close();
    assert!(server.io.read_to_end().is_empty());
    assert!(server.wait_exit().success());
}
