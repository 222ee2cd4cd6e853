//! `procward serve`: requests per second of `poll` over stdin/stdout, with
//! 8 clients' worth of requests pipelined into one stream.
//!
//! `PROCWARD_SERVE_BIN=path` runs another build of the server instead of
//! this one's, to compare two builds in alternating runs of one session.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use crate::Opts;
use crate::harness::{Row, Samples, Target, Unit};

/// Clients whose requests are interleaved in the stream.
const CLIENTS: usize = 8;

struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start() -> Server {
        let binary = std::env::var_os("PROCWARD_SERVE_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_procward").into());
        let mut child = Command::new(binary)
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting procward serve");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Server { child, stdout }
    }

    fn request(&mut self, request: &Value) -> Value {
        let stdin = self.child.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{request}").expect("writing a request");
        stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("reading a response");
        let response: Value = serde_json::from_str(&line).expect("a JSON response");
        assert_eq!(response["ok"], true, "{response}");
        response
    }

    /// Writes `n` poll requests from a thread of their own while this one
    /// reads the `n` responses; returns requests per second.
    fn poll_rate(&mut self, handle: &str, n: usize) -> f64 {
        let mut lines = Vec::with_capacity(n * 64);
        for i in 0..n {
            let id = format!("c{}-{}", i % CLIENTS, i / CLIENTS);
            let request = json!({"id": id, "op": "poll", "handle_id": handle});
            writeln!(lines, "{request}").expect("formatting");
        }
        let mut stdin = self.child.stdin.take().expect("stdin open");
        let start = Instant::now();
        let writer = std::thread::spawn(move || {
            let mut out = BufWriter::with_capacity(64 * 1024, &mut stdin);
            out.write_all(&lines).expect("writing requests");
            out.flush().expect("flush");
            drop(out);
            stdin
        });
        let mut line = String::new();
        for _ in 0..n {
            line.clear();
            self.stdout
                .read_line(&mut line)
                .expect("reading a response");
            debug_assert!(line.contains("\"ok\":true"), "{line}");
        }
        let elapsed = start.elapsed();
        assert!(line.contains("\"ok\":true"), "{line}");
        self.child.stdin = Some(writer.join().expect("writer thread"));
        n as f64 / elapsed.as_secs_f64()
    }

    /// Closing stdin makes the server kill what it runs and exit.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().expect("waiting for the server");
        assert!(status.success(), "procward serve exited with {status}");
    }
}

pub(crate) fn serve(opts: &Opts) -> Vec<Row> {
    let mut server = Server::start();
    let spawned = server.request(&json!({"id": 0, "op": "spawn", "argv": ["printf", "hello"]}));
    let handle = spawned["result"]["handle_id"]
        .as_str()
        .expect("a handle id")
        .to_owned();
    server.request(&json!({"id": 1, "op": "wait", "handle_id": handle}));
    let mut rates = Samples::default();
    server.poll_rate(&handle, 20_000);
    for _ in 0..opts.rounds(8) {
        rates.push(server.poll_rate(&handle, 100_000));
    }
    server.stop();
    vec![
        Row::new(
            "`procward serve`: poll requests over stdin/stdout, 8 clients pipelined",
            Unit::PerSec,
            rates,
        )
        .target(Target::Absolute(200_000.0), "≥ 200,000/s"),
    ]
}
