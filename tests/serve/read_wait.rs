//! `read` with `wait_ms`: a read that finds nothing new waits for the
//! next bytes (or the end) instead of answering empty, and answers empty
//! only when its wait passes.

use crate::harness::{Server, SocketDir, pid_of};
use serde_json::json;

#[test]
fn a_waiting_read_answers_when_bytes_come_or_the_process_ends() {
    let dir = SocketDir::new("read-wait");
    let gate = dir.file("gate");
    let mut server = Server::start(&[]);
    let script = format!(
        "echo one; while [ ! -e {} ]; do sleep 0.02; done; echo two; while [ ! -e {}.end ]; do sleep 0.02; done",
        gate.display(),
        gate.display()
    );
    let spawned = server.io.call("spawn", json!({"command": script}));
    let handle = spawned["handle_id"].clone();
    let first = server
        .io
        .call("read", json!({"handle_id": handle, "wait_ms": 60_000}));
    assert_eq!(first["data"], "one\n", "{first}");
    let offset = first["next_offset"].clone();

    // Nothing past `offset` yet: the read waits. A poll sent after it is
    // answered first, so the read is still pending.
    let read = server.io.send_op(
        "read",
        json!({"handle_id": handle, "offset": offset, "wait_ms": 60_000}),
    );
    let poll = server.io.send_op("poll", json!({"handle_id": handle}));
    let polled = server.io.next_response();
    assert_eq!(
        polled["id"], poll,
        "the read answered before the poll: {polled}"
    );
    assert_eq!(polled["result"]["stdout"], "one\n");

    std::fs::write(&gate, b"").expect("open the gate");
    let second = server.io.response_for(&read);
    assert_eq!(second["result"]["data"], "two\n", "{second}");
    assert_eq!(second["result"]["complete"], false);

    // A wait that passes answers empty; the end answers `complete`.
    let offset = second["result"]["next_offset"].clone();
    let idle = server.io.call(
        "read",
        json!({"handle_id": handle, "offset": offset, "wait_ms": 50}),
    );
    assert_eq!(idle["data"], "", "{idle}");
    assert_eq!(idle["complete"], false);
    let last = server.io.send_op(
        "read",
        json!({"handle_id": handle, "offset": offset, "wait_ms": 60_000}),
    );
    std::fs::write(dir.file("gate.end"), b"").expect("end the process");
    let end = server.io.response_for(&last);
    assert_eq!(end["result"]["data"], "", "{end}");
    assert_eq!(end["result"]["complete"], true, "{end}");

    let server_pid = server.pid();
    server.io.close();
    assert!(server.wait_exit().success());
    crate::harness::assert_all_gone(server_pid, &[pid_of(&spawned)]);
}

#[test]
fn hundreds_of_waiting_reads_all_wake_on_one_write() {
    // Each waiting read holds a subscription of its own; one line of
    // output must answer every one of them, and none may be lost.
    const READERS: usize = 300;
    let dir = SocketDir::new("read-wait-many");
    let gate = dir.file("gate");
    let mut server = Server::start(&[]);
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.02; done; echo go",
        gate.display()
    );
    let spawned = server.io.call("spawn", json!({"command": script}));
    let handle = spawned["handle_id"].clone();
    let ids: Vec<_> = (0..READERS)
        .map(|_| {
            server
                .io
                .send_op("read", json!({"handle_id": handle, "wait_ms": 60_000}))
        })
        .collect();
    // Nothing is written before the gate opens, so no read may answer
    // yet: a poll sent after them is answered first. (A read that has
    // not subscribed by the time the gate opens finds the line on its
    // first look: either way none may miss it.)
    let poll = server.io.send_op("poll", json!({"handle_id": handle}));
    let polled = server.io.next_response();
    assert_eq!(polled["id"], poll, "a read answered early: {polled}");

    std::fs::write(&gate, b"").expect("open the gate");
    for id in &ids {
        let read = server.io.response_for(id);
        assert_eq!(read["result"]["data"], "go\n", "{read}");
    }
    let server_pid = server.pid();
    server.io.close();
    assert!(server.wait_exit().success());
    crate::harness::assert_all_gone(server_pid, &[pid_of(&spawned)]);
}
