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
    /// reads the `n` responses; returns requests per second and the
    /// server's CPU time per request, in seconds.
    fn poll_rate(&mut self, handle: &str, n: usize) -> (f64, f64) {
        let mut lines = Vec::with_capacity(n * 64);
        for i in 0..n {
            let id = format!("c{}-{}", i % CLIENTS, i / CLIENTS);
            let request = json!({"id": id, "op": "poll", "handle_id": handle});
            writeln!(lines, "{request}").expect("formatting");
        }
        let mut stdin = self.child.stdin.take().expect("stdin open");
        let cpu_before = self.cpu_seconds();
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
        let cpu = self.cpu_seconds() - cpu_before;
        assert!(line.contains("\"ok\":true"), "{line}");
        self.child.stdin = Some(writer.join().expect("writer thread"));
        (n as f64 / elapsed.as_secs_f64(), cpu / n as f64)
    }

    /// The server's CPU time so far (user + system, every thread), from
    /// `/proc/<pid>/stat`. On a shared machine it moves less than the
    /// rate, which also depends on how much CPU the server was given.
    fn cpu_seconds(&self) -> f64 {
        /// The unit of those times: `USER_HZ`, 100 on Linux.
        const TICKS_PER_SECOND: f64 = 100.0;
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("reading the server's /proc/<pid>/stat");
        // `pid (comm) state ...`: utime and stime are the 12th and 13th
        // fields after the command name.
        let (_, fields) = stat.rsplit_once(") ").expect("a /proc/<pid>/stat line");
        let ticks: f64 = fields
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|field| field.parse::<f64>().expect("a tick count"))
            .sum();
        ticks / TICKS_PER_SECOND
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
    let mut cpu = Samples::default();
    server.poll_rate(&handle, 20_000);
    for _ in 0..opts.rounds(8) {
        let (rate, cpu_per_poll) = server.poll_rate(&handle, 100_000);
        rates.push(rate);
        cpu.push(cpu_per_poll);
    }
    server.stop();
    vec![
        Row::new(
            "`procward serve`: poll requests over stdin/stdout, 8 clients pipelined",
            Unit::PerSec,
            rates,
        )
        .target(Target::Absolute(200_000.0), "≥ 200,000/s"),
        Row::new(
            "`procward serve`: server CPU time per poll (user + system, all threads)",
            Unit::Seconds,
            cpu,
        ),
    ]
}
