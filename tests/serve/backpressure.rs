//! Back-pressure and bounded responses in `procward serve`: a client that
//! stops reading its responses stops being read, holds the server's memory
//! within the documented bound and never delays another client; `max_bytes`
//! cuts and flags; output that is not text goes as base64.
//!
//! `PROCWARD_SERVE_BIN` runs these against another build of the binary
//! (the release figures in docs/protocol.md are the ignored test below,
//! run that way).

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::harness;
use crate::harness::{
    Lines, Server, SocketDir, assert_no_children, connect, stop_child, wait_until,
};

const MIB: u64 = 1024 * 1024;

/// The server's defaults (`procward serve --help`).
const MAX_UNSENT_BYTES: u64 = 8 * MIB;
/// Requests a connection may have read and not answered.
const MAX_IN_FLIGHT: usize = 1024;
/// Responses rendered at once per connection.
const RENDERING: u64 = 2;

/// What a handle's 10 MB of output costs the server beyond its capture
/// while it is stuck behind a client that does not read: the unsent bound,
/// plus the lines being rendered (each up to twice its size while its
/// buffer grows), plus one line the writer holds, plus room for the
/// allocator's own slack.
fn stuck_bound(line: u64) -> u64 {
    MAX_UNSENT_BYTES + RENDERING * 2 * line + line + 48 * MIB
}

/// `VmHWM` and `VmRSS` of `pid`, in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server's status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib * 1024)
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn binary() -> PathBuf {
    std::env::var_os("PROCWARD_SERVE_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_procward")),
        PathBuf::from,
    )
}

/// A `procward serve` stopped (SIGTERM, then SIGKILL) when dropped.
struct Served(Child);

impl Served {
    fn start(args: &[&str], stdio: impl Fn() -> Stdio) -> Self {
        Served(
            Command::new(binary())
                .arg("serve")
                .args(args)
                .stdin(stdio())
                .stdout(stdio())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start procward"),
        )
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        stop_child(&mut self.0);
    }
}

/// A shell command that writes `bytes` bytes of `a` and exits.
fn output_of(bytes: u64) -> Value {
    json!({"command": format!("head -c {bytes} /dev/zero | tr '\\0' a"), "mode": "shell"})
}

/// Writes `count` poll lines of `handle` (each padded to about 1 KiB in its
/// id, so that they outgrow the kernel's buffers
/// if the server stops reading) from a thread; the counter says how many
/// were written whole.
fn write_polls(
    mut output: impl Write + Send + 'static,
    handle: &Value,
    count: usize,
) -> (Arc<AtomicUsize>, JoinHandle<()>) {
    let written = Arc::new(AtomicUsize::new(0));
    let pad = "p".repeat(1000);
    let lines: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            let mut line = serde_json::to_vec(
                &json!({"id": format!("poll-{i}-{pad}"), "op": "poll", "handle_id": handle}),
            )
            .expect("encode a poll");
            line.push(b'\n');
            line
        })
        .collect();
    let counter = written.clone();
    let writer = thread::spawn(move || {
        for line in lines {
            if output.write_all(&line).is_err() {
                return;
            }
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (written, writer)
}

/// What the no-reader case measured.
struct NoReader {
    /// The server's VmHWM before the silent client, and at the end.
    hwm_before: u64,
    hwm_after: u64,
    /// The other client's `list` round trips while the first was stuck.
    list_latencies: Vec<Duration>,
    /// Polls the silent client got into the server's socket before it
    /// stopped being read.
    polls_written: usize,
}

/// A socket client sends `polls` polls of a handle holding `output` bytes
/// and never reads; meanwhile another client lists. Asserts that the
/// silent client stopped being read (with more polls than a connection may
/// have in flight, it cannot have sent them all), that the other was
/// answered, and that the server's memory stayed within the design bound.
fn no_reader_case(polls: usize, output: u64, lists: usize) -> NoReader {
    let dir = SocketDir::new("backpressure");
    let path = dir.socket();
    let server = Served::start(
        &["--socket", path.to_str().expect("a UTF-8 path")],
        Stdio::null,
    );
    wait_until("the socket to exist", || {
        std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_socket())
    });
    let mut other = connect(&path);
    let handle = other.call("spawn", output_of(output))["handle_id"].clone();
    let done = other.call("wait", json!({"handle_id": handle}));
    assert_eq!(done["stdout_total_bytes"], output, "{}", done["status"]);
    // Once more, so that the allocator has served a line this large before
    // the baseline is taken.
    other.call("poll", json!({"handle_id": handle}));
    let (hwm_before, _) = memory(server.pid());

    let silent = UnixStream::connect(&path).expect("connect");
    let (written, writer) = write_polls(silent.try_clone().expect("clone"), &handle, polls);

    // The silent client's writes stop moving (the server read all it
    // will) while the other client goes on being answered.
    let mut list_latencies = Vec::new();
    let list = |other: &mut Lines, latencies: &mut Vec<Duration>| {
        let asked = Instant::now();
        let listed = other.call("list", json!({}));
        latencies.push(asked.elapsed());
        assert_eq!(listed["handles"].as_array().map(Vec::len), Some(1));
    };
    // Settled: the server has begun writing it answers (so it has read
    // and answered some of its polls), and neither that nor its writes
    // move while the other client is answered.
    let deadline = Instant::now() + harness::DEADLINE;
    let look = || {
        (
            rustix::io::ioctl_fionread(&silent).expect("FIONREAD"),
            written.load(Ordering::SeqCst),
        )
    };
    loop {
        let before = look();
        for _ in 0..5 {
            list(&mut other, &mut list_latencies);
        }
        let after = look();
        if before == after && after.0 > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the silent client's connection never settled"
        );
    }
    if polls > MAX_IN_FLIGHT + 1000 {
        assert!(
            written.load(Ordering::SeqCst) < polls,
            "the server read all {polls} polls of a client that reads nothing"
        );
    }
    let polls_written = written.load(Ordering::SeqCst);
    while list_latencies.len() < lists {
        list(&mut other, &mut list_latencies);
    }
    assert_eq!(
        written.load(Ordering::SeqCst),
        polls_written,
        "the silent client was read while it still read nothing"
    );
    let (hwm_after, rss) = memory(server.pid());
    let line = output + 2048;
    assert!(
        hwm_after <= hwm_before + stuck_bound(line),
        "VmHWM went from {} to {} MiB (VmRSS {} MiB); the bound allows {} MiB more",
        hwm_before / MIB,
        hwm_after / MIB,
        rss / MIB,
        stuck_bound(line) / MIB
    );

    // The answers were held, not lost: the first is a whole poll.
    let mut answers = BufReader::new(silent.try_clone().expect("clone"));
    let mut first = String::new();
    answers
        .read_line(&mut first)
        .expect("read the first answer");
    let first: Value = serde_json::from_str(&first).expect("a JSON answer");
    assert_eq!(
        first["result"]["stdout"].as_str().map(str::len),
        Some(output as usize)
    );
    assert_eq!(first["result"]["stdout_cut"], false);
    // Gone for good: the server drops what it still held for it.
    drop(answers);
    let _ = silent.shutdown(std::net::Shutdown::Both);
    drop(silent);
    writer.join().expect("the writer thread");
    list(&mut other, &mut list_latencies);
    drop(server);
    NoReader {
        hwm_before,
        hwm_after,
        list_latencies,
        polls_written,
    }
}

#[test]
fn a_socket_client_that_never_reads_holds_bounded_memory_and_delays_no_one() {
    // More polls than may be in flight, and than the socket buffers hold.
    let measured = no_reader_case(2500, 10_000_000, 20);
    eprintln!(
        "no reader: VmHWM {} -> {} MiB, {} polls written, slowest list {:?}",
        measured.hwm_before / MIB,
        measured.hwm_after / MIB,
        measured.polls_written,
        measured.list_latencies.iter().max()
    );
}

/// The figures for docs/protocol.md; run against a release build:
/// `PROCWARD_SERVE_BIN=target/release/procward cargo test --test
/// serve_backpressure -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: run by hand against a release build"]
fn no_reader_figures() {
    let mut measured = no_reader_case(580, 10_000_000, 200);
    measured.list_latencies.sort();
    let at =
        |q: f64| measured.list_latencies[((measured.list_latencies.len() - 1) as f64 * q) as usize];
    println!(
        "peak RSS (VmHWM) {:.1} MiB (before the silent client {:.1} MiB); {} of 580 polls \
         written before it stopped being read; other client's list over {} calls: \
         p50 {:?}, p99 {:?}, max {:?}",
        measured.hwm_after as f64 / MIB as f64,
        measured.hwm_before as f64 / MIB as f64,
        measured.polls_written,
        measured.list_latencies.len(),
        at(0.5),
        at(0.99),
        at(1.0),
    );
}

/// Waits until the server stops reading the pipe `pipe` (its write end):
/// the pipe fills up (small writes are atomic, so "full" leaves gaps in
/// its pages) and neither it nor the lines `written` move between two
/// looks. Returns how many lines were written.
fn wait_stalled(pipe: &OwnedFd, written: &AtomicUsize) -> usize {
    let capacity = rustix::pipe::fcntl_getpipe_size(pipe).expect("the pipe's size");
    let mut last = (0, 0);
    wait_until("the server's stdin to fill up and stay full", || {
        let now = (
            rustix::io::ioctl_fionread(pipe).expect("FIONREAD") as usize,
            written.load(Ordering::SeqCst),
        );
        let settled = now == last && now.0 > capacity / 2;
        last = now;
        settled
    });
    last.1
}

/// Reads response lines until the one with `id`.
/// Spawns a child that writes `bytes` bytes and waits for it, over the
/// server's stdin/stdout; returns its handle id and the wait's response.
fn spawn_and_wait(
    input: &mut impl Write,
    output: &mut BufReader<ChildStdout>,
    bytes: u64,
) -> (Value, Value) {
    let mut spawn = output_of(bytes);
    spawn["id"] = json!("s");
    spawn["op"] = json!("spawn");
    writeln!(input, "{spawn}").expect("write");
    let handle = response_for(output, "s")["result"]["handle_id"].clone();
    writeln!(
        input,
        "{}",
        json!({"id": "w", "op": "wait", "handle_id": handle})
    )
    .expect("write");
    let waited = response_for(output, "w");
    (handle, waited)
}

fn response_for(reader: &mut BufReader<ChildStdout>, id: &str) -> Value {
    loop {
        let mut line = String::new();
        let read = reader.read_line(&mut line).expect("read a response");
        assert!(read > 0, "the server closed its output");
        let response: Value = serde_json::from_str(&line).expect("a JSON response");
        if response["id"] == id {
            return response;
        }
    }
}

#[test]
fn over_stdio_a_client_that_does_not_read_stops_being_read() {
    let mut server = Served::start(&[], Stdio::piped);
    let pid = server.pid();
    let mut input = server.0.stdin.take().expect("piped stdin");
    let mut output = BufReader::new(server.0.stdout.take().expect("piped stdout"));
    let output_bytes: u64 = 10_000_000;
    let (handle, waited) = spawn_and_wait(&mut input, &mut output, output_bytes);
    assert_eq!(waited["result"]["stdout_total_bytes"], output_bytes);
    writeln!(
        input,
        "{}",
        json!({"id": "p", "op": "poll", "handle_id": handle})
    )
    .expect("write");
    response_for(&mut output, "p");
    let (hwm_before, _) = memory(pid);

    // 2,000 polls, about 2 MB of requests: far more than the pipe holds.
    let pipe: OwnedFd = input.as_fd().try_clone_to_owned().expect("dup stdin");
    let polls = 2000;
    let (written, writer) = write_polls(input, &handle, polls);
    let last = wait_stalled(&pipe, &written);
    assert!(written.load(Ordering::SeqCst) < polls);
    let (hwm_after, rss) = memory(pid);
    let line = output_bytes + 2048;
    assert!(
        hwm_after <= hwm_before + stuck_bound(line),
        "VmHWM went from {} to {} MiB (VmRSS {} MiB)",
        hwm_before / MIB,
        hwm_after / MIB,
        rss / MIB
    );
    assert_eq!(
        written.load(Ordering::SeqCst),
        last,
        "read while nobody read"
    );
    eprintln!(
        "stdio, no reader: VmHWM {} -> {} MiB, {} of {polls} polls written",
        hwm_before / MIB,
        hwm_after / MIB,
        last
    );

    // Reading again lets it read on.
    let stalled = written.load(Ordering::SeqCst);
    let deadline = Instant::now() + harness::DEADLINE;
    let mut line = Vec::new();
    while written.load(Ordering::SeqCst) == stalled {
        assert!(Instant::now() < deadline, "the server did not read on");
        line.clear();
        assert!(
            output.read_until(b'\n', &mut line).expect("read") > 0,
            "output closed early"
        );
        let response: Value = serde_json::from_slice(&line).expect("a JSON response");
        assert_eq!(
            response["result"]["stdout_total_bytes"], output_bytes,
            "{}",
            response["id"]
        );
    }
    // A reader that goes away: what is left is dropped, the rest of the
    // input is read, and end of input ends the server.
    drop(output);
    writer.join().expect("the writer thread");
    drop(pipe);
    let status = harness::wait_child(&mut server.0);
    assert!(status.success(), "{status:?}");
}

#[test]
fn max_bytes_cuts_each_stream_and_flags_it() {
    let mut server = Server::start(&["--max-response-bytes", "8"]);
    let handle = server.io.call(
        "spawn",
        json!({"command": "printf abcdef; printf 0123456789ABCDEF >&2", "mode": "shell"}),
    )["handle_id"]
        .clone();
    let done = server
        .io
        .call("wait", json!({"handle_id": handle, "max_bytes": 4}));
    assert_eq!(done["stdout"], "abcd");
    assert_eq!(done["stdout_cut"], true);
    assert_eq!(done["stdout_total_bytes"], 6);
    assert_eq!(done["stderr"], "0123");
    assert_eq!(done["stderr_cut"], true);
    assert_eq!(done["stderr_total_bytes"], 16);
    assert_eq!(
        done["stdout_truncated"], false,
        "cut is not the capture cap"
    );

    // The server's cap holds when a request asks for more, or nothing.
    for params in [
        json!({"handle_id": handle}),
        json!({"handle_id": handle, "max_bytes": 1000}),
    ] {
        let polled = server.io.call("poll", params);
        assert_eq!(polled["stdout"], "abcdef");
        assert_eq!(polled["stdout_cut"], false);
        assert_eq!(polled["stderr"], "01234567");
        assert_eq!(polled["stderr_cut"], true);
    }
    // A read goes on where the cap stopped it.
    let read = server
        .io
        .call("read", json!({"handle_id": handle, "stream": "stderr"}));
    assert_eq!(read["data"], "01234567");
    assert_eq!(read["next_offset"], 8);
    let read = server.io.call(
        "read",
        json!({"handle_id": handle, "stream": "stderr", "offset": 8, "max_bytes": 5}),
    );
    assert_eq!(read["data"], "89ABC");
    let bad = server
        .io
        .fail("poll", json!({"handle_id": handle, "max_bytes": -1}));
    assert_eq!(bad["kind"], "invalid_request");
    assert_no_children(server.pid());
}

#[test]
fn binary_output_round_trips_through_base64() {
    let dir = SocketDir::new("binary");
    let file = dir.file("bytes");
    // Every byte value, and runs of NUL: not UTF-8, and dear to escape.
    let mut bytes: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    bytes.extend(std::iter::repeat_n(0u8, 300_000));
    std::fs::write(&file, &bytes).expect("write the bytes");
    let mut server = Server::start(&[]);
    let handle = server.io.call(
        "spawn",
        json!({"argv": ["cat", file.to_str().expect("a UTF-8 path")]}),
    )["handle_id"]
        .clone();
    let done = server.io.call("wait", json!({"handle_id": handle}));
    assert_eq!(done["stdout_encoding"], "base64");
    assert_eq!(done["stderr_encoding"], "text");
    let shown = done["stdout"].as_str().expect("base64 text");
    assert_eq!(shown.len(), bytes.len().div_ceil(3) * 4, "base64 costs 4/3");
    assert_eq!(STANDARD.decode(shown).expect("valid base64"), bytes);

    // 4 MiB of NUL: about 5.3 MiB of base64, where escapes took 24 MiB.
    let nuls = server.io.call(
        "spawn",
        json!({"command": "head -c 4194304 /dev/zero", "mode": "shell"}),
    )["handle_id"]
        .clone();
    let done = server.io.call("wait", json!({"handle_id": nuls}));
    assert_eq!(done["stdout_encoding"], "base64");
    let shown = done["stdout"].as_str().expect("base64 text");
    assert_eq!(shown.len(), 4_194_304usize.div_ceil(3) * 4);
    assert!(
        STANDARD
            .decode(shown)
            .expect("valid base64")
            .iter()
            .all(|b| *b == 0)
    );

    // Cut binary output is the exact first bytes.
    let polled = server
        .io
        .call("poll", json!({"handle_id": handle, "max_bytes": 1000}));
    assert_eq!(polled["stdout_cut"], true);
    let shown = polled["stdout"].as_str().expect("base64 text");
    assert_eq!(
        STANDARD.decode(shown).expect("valid base64"),
        &bytes[..1000]
    );
    assert_no_children(server.pid());
}

/// Reads response lines into a channel, so that a test can ask whether
/// one came in a given time.
fn responses(output: ChildStdout) -> std::sync::mpsc::Receiver<Value> {
    let (sender, received) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(output).lines() {
            let Ok(line) = line else { break };
            let Ok(response) = serde_json::from_str(&line) else {
                break;
            };
            if sender.send(response).is_err() {
                break;
            }
        }
    });
    received
}

/// Four pending waits (each padded to `pad` bytes in its id) on a server started
/// with `args`: the list sent behind them must not be read, so not
/// answered, before one of the waits ends.
fn nothing_read_past_four_pending_waits(args: &[&str], pad: usize) {
    let mut server = Served::start(args, Stdio::piped);
    let mut input = server.0.stdin.take().expect("piped stdin");
    let received = responses(server.0.stdout.take().expect("piped stdout"));
    let next = || {
        received
            .recv_timeout(harness::DEADLINE)
            .expect("a response in time")
    };
    let gate = std::env::temp_dir().join(format!("procward-inflight-{}-{pad}", std::process::id()));
    let _ = std::fs::remove_file(&gate);
    let script = format!("while [ ! -e '{}' ]; do sleep 0.02; done", gate.display());
    writeln!(
        input,
        "{}",
        json!({"id": "s", "op": "spawn", "command": script, "mode": "shell"})
    )
    .expect("write");
    let spawned = next();
    let handle = spawned["result"]["handle_id"].clone();
    let pad = "p".repeat(pad);
    for i in 0..4 {
        writeln!(
            input,
            "{}",
            json!({"id": format!("{i}-{pad}"), "op": "wait", "handle_id": handle})
        )
        .expect("write");
    }
    writeln!(input, "{}", json!({"id": "l", "op": "list"})).expect("write");
    // An answer now would show the cap broken; silence proves nothing
    // alone, so the order below is the check.
    let early = received.recv_timeout(Duration::from_millis(500));
    assert!(early.is_err(), "answered at the cap: {early:?}");
    // The process ends, the waits are answered, and only then the list.
    std::fs::write(&gate, b"").expect("open the gate");
    let order: Vec<Value> = (0..5).map(|_| next()["id"].clone()).collect();
    let _ = std::fs::remove_file(&gate);
    assert_ne!(order[0], "l", "the list came before any wait: {order:?}");
    assert!(order.contains(&json!("l")), "{order:?}");
    drop(input);
    let status = harness::wait_child(&mut server.0);
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_connection_at_its_in_flight_cap_is_not_read_until_a_request_ends() {
    nothing_read_past_four_pending_waits(&["--max-in-flight", "4"], 0);
}

#[test]
fn a_connection_at_its_in_flight_bytes_is_not_read_until_a_request_ends() {
    // Four waits of about 1,080 bytes do not fit in 4,000.
    nothing_read_past_four_pending_waits(&["--max-in-flight-bytes", "4000"], 1000);
}

#[test]
fn closing_does_not_wait_for_a_client_that_never_reads() {
    let mut server = Served::start(&["--shutdown-grace-ms", "0"], Stdio::piped);
    let mut input = server.0.stdin.take().expect("piped stdin");
    let mut output = BufReader::new(server.0.stdout.take().expect("piped stdout"));
    let (handle, _) = spawn_and_wait(&mut input, &mut output, 1_000_000);
    // Far more answers than the pipe and the unsent bound hold, never read:
    // the server is stuck on its output when it is told to stop.
    let pipe: OwnedFd = input.as_fd().try_clone_to_owned().expect("dup stdin");
    let (written, writer) = write_polls(input, &handle, 2000);
    wait_stalled(&pipe, &written);
    drop(pipe);
    harness::send_signal(server.pid(), rustix::process::Signal::TERM);
    let status = harness::wait_child(&mut server.0);
    assert!(status.success(), "{status:?}");
    // The server is gone: a write still blocked on its stdin fails.
    writer.join().expect("the writer thread");
    drop(output);
}
