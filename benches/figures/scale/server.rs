//! The `procward serve` side of the `scale` group: a real server process
//! driven over its stdin/stdout by a writer thread and a reader thread.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{
    AFTER, BYSTANDER, HOLD, Measured, OWNER, PHASE_DEADLINE, POLL_EVERY, SHUTDOWN_GRACE_MS, STALL,
    Sampler, left_behind, record_burst,
};
use crate::procfs;

/// A `procward serve` process driven over its stdin/stdout: a thread
/// writes the request lines handed to it, another reads the responses.
struct Server {
    child: Child,
    pid: u32,
    lines: Option<mpsc::Sender<Vec<u8>>>,
    /// Batches handed to the writer thread and not yet written.
    unwritten: Arc<AtomicUsize>,
    responses: mpsc::Receiver<(Instant, Value)>,
    next_id: u64,
    unwritten_since: Option<Instant>,
}

impl Server {
    /// A server for `n` children. A build that bounds the requests in
    /// flight per connection (`--max-in-flight`) is given room for a wait
    /// per child, as a host keeping that many waits would configure it.
    fn start(n: usize) -> Result<Server, String> {
        let mut command = Command::new(Self::binary());
        command.args([
            "serve",
            "--max-handles",
            &(n + 64).to_string(),
            "--shutdown-grace-ms",
            &SHUTDOWN_GRACE_MS.to_string(),
        ]);
        if Self::takes("--max-in-flight ") {
            command.args(["--max-in-flight", &(n + 256).to_string()]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| format!("starting procward serve: {err}"))?;
        let pid = child.id();
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(stdin), Some(stdout)) => (stdin, stdout),
            _ => return Err("procward serve without piped stdio".to_owned()),
        };
        let (lines, batches) = mpsc::channel::<Vec<u8>>();
        let unwritten = Arc::new(AtomicUsize::new(0));
        let written = unwritten.clone();
        std::thread::spawn(move || {
            let mut stdin = stdin;
            for batch in batches {
                if stdin
                    .write_all(&batch)
                    .and_then(|()| stdin.flush())
                    .is_err()
                {
                    return;
                }
                written.fetch_sub(1, Ordering::Relaxed);
            }
            // Dropping stdin here is the end of input: the server shuts down.
        });
        let (answers, responses) = mpsc::channel();
        std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match stdout.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let at = Instant::now();
                let value = serde_json::from_str(&line).unwrap_or(Value::Null);
                if answers.send((at, value)).is_err() {
                    return;
                }
            }
        });
        Ok(Server {
            child,
            pid,
            lines: Some(lines),
            unwritten,
            responses,
            next_id: 0,
            unwritten_since: None,
        })
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn send(&mut self, requests: &[Value]) -> Result<(), String> {
        let mut batch = Vec::with_capacity(requests.len() * 80);
        for request in requests {
            let _ = writeln!(batch, "{request}");
        }
        self.unwritten.fetch_add(1, Ordering::Relaxed);
        self.lines
            .as_ref()
            .ok_or("stdin is closed")?
            .send(batch)
            .map_err(|_| "the server's stdin is closed".to_owned())
    }

    /// The next response within `wait`, `None` if none came; an error past
    /// `deadline`, when the server has left bytes unread for [`STALL`], or
    /// once its stdout closed.
    fn next_within(
        &mut self,
        wait: Duration,
        deadline: Instant,
        what: &str,
    ) -> Result<Option<(Instant, Value)>, String> {
        match self.responses.recv_timeout(wait) {
            Ok(response) => return Ok(Some(response)),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(format!("the server's stdout closed during {what}"));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        if self.unwritten.load(Ordering::Relaxed) == 0 {
            self.unwritten_since = None;
        } else if now - *self.unwritten_since.get_or_insert(now) > STALL {
            return Err(format!(
                "the server stopped reading its stdin during {what} (an in-flight bound?)"
            ));
        }
        if now > deadline {
            return Err(format!("{what} took over {} s", PHASE_DEADLINE.as_secs()));
        }
        Ok(None)
    }

    /// Sends one request and returns its result, skipping other responses.
    fn call(&mut self, mut request: Value) -> Result<Value, String> {
        let id = self.id();
        request["id"] = json!(id);
        self.send(std::slice::from_ref(&request))?;
        let deadline = Instant::now() + PHASE_DEADLINE;
        loop {
            let Some((_, response)) =
                self.next_within(Duration::from_millis(100), deadline, "a call")?
            else {
                continue;
            };
            if response["id"] == id {
                return ok_result(response);
            }
        }
    }

    /// Spawns `n` `sleep`s in one write; returns the time until all were
    /// answered and their handle ids.
    fn burst(&mut self, n: usize) -> Result<(f64, Vec<String>), String> {
        let first = self.next_id + 1;
        let requests: Vec<Value> = (0..n)
            .map(|_| {
                let id = self.id();
                json!({"id": id, "op": "spawn", "argv": ["sleep", "600"], "owner": OWNER})
            })
            .collect();
        let start = Instant::now();
        self.send(&requests)?;
        let mut handles = vec![String::new(); n];
        let mut answered = 0;
        let deadline = start + PHASE_DEADLINE;
        while answered < n {
            let Some((_, response)) =
                self.next_within(Duration::from_millis(100), deadline, "the burst")?
            else {
                continue;
            };
            let Some(slot) = response["id"]
                .as_u64()
                .and_then(|id| id.checked_sub(first))
                .and_then(|i| handles.get_mut(i as usize))
            else {
                continue;
            };
            let result = ok_result(response)?;
            *slot = result["handle_id"]
                .as_str()
                .ok_or("a spawn answer without a handle id")?
                .to_owned();
            answered += 1;
        }
        Ok((start.elapsed().as_secs_f64(), handles))
    }

    /// Whether the server reads on while `n` of its requests are pending:
    /// `n` waits on `bystander` that time out after [`HOLD`], then a poll.
    /// A server that bounds its requests in flight below `n` reads the
    /// poll only once a wait has timed out, so it answers it after one.
    fn holds_in_flight(&mut self, n: usize, bystander: &str) -> Result<bool, String> {
        let first = self.next_id + 1;
        let mut requests: Vec<Value> = (0..n)
            .map(|_| {
                let id = self.id();
                json!({"id": id, "op": "wait", "handle_id": bystander, "timeout_ms": HOLD.as_millis() as u64})
            })
            .collect();
        let poll = self.id();
        requests.push(json!({"id": poll, "op": "poll", "handle_id": bystander}));
        self.send(&requests)?;
        let deadline = Instant::now() + PHASE_DEADLINE;
        let (mut polled_first, mut polled, mut timed_out) = (false, false, 0);
        while !polled || timed_out < n {
            let Some((_, response)) =
                self.next_within(Duration::from_millis(100), deadline, "the in-flight check")?
            else {
                continue;
            };
            match response["id"].as_u64() {
                Some(id) if id == poll => {
                    polled = true;
                    polled_first = timed_out == 0;
                }
                Some(id) if (first..poll).contains(&id) => timed_out += 1,
                _ => {}
            }
        }
        Ok(polled_first)
    }

    /// A wait per handle; returns the request ids.
    fn waits(&mut self, handles: &[String]) -> Result<HashSet<u64>, String> {
        let requests: Vec<Value> = handles
            .iter()
            .map(|handle| json!({"id": self.id(), "op": "wait", "handle_id": handle}))
            .collect();
        self.send(&requests)?;
        Ok(requests.iter().filter_map(|r| r["id"].as_u64()).collect())
    }

    /// `kill_owner` of the burst while a poll of `bystander` goes every
    /// [`POLL_EVERY`]: the time until it was answered, until every wait
    /// was also answered, and the poll latencies.
    fn kill_owner(
        &mut self,
        n: usize,
        mut waits: HashSet<u64>,
        bystander: &str,
    ) -> Result<(f64, f64, Vec<f64>), String> {
        let kill_id = self.id();
        let start = Instant::now();
        self.send(&[json!({"id": kill_id, "op": "kill_owner", "owner": OWNER})])?;
        let deadline = start + PHASE_DEADLINE;
        let (mut answered, mut all_waits) = (None, waits.is_empty().then_some(0.0));
        let mut polls = Vec::new();
        let mut poll: Option<(u64, Instant)> = None;
        let mut next_poll = start;
        while answered.is_none() || all_waits.is_none() {
            let now = Instant::now();
            if poll.is_none() && now >= next_poll {
                let id = self.id();
                self.send(&[json!({"id": id, "op": "poll", "handle_id": bystander})])?;
                poll = Some((id, now));
            }
            let Some((at, response)) = self.next_within(POLL_EVERY, deadline, "kill_owner")? else {
                continue;
            };
            let Some(id) = response["id"].as_u64() else {
                continue;
            };
            if id == kill_id {
                let killed = ok_result(response)?["killed"].as_u64();
                if killed != Some(n as u64) {
                    return Err(format!("kill_owner killed {killed:?} of {n}"));
                }
                answered = Some((at - start).as_secs_f64());
            } else if let Some((poll_id, sent)) = poll
                && poll_id == id
            {
                polls.push((at - sent).as_secs_f64());
                poll = None;
                next_poll = at + POLL_EVERY;
            } else if waits.remove(&id) {
                let status = ok_result(response)?["status"].clone();
                if status != "killed" {
                    return Err(format!("a wait answered {status} after kill_owner"));
                }
                if waits.is_empty() {
                    all_waits = Some((at - start).as_secs_f64());
                }
            }
        }
        let (answered, all_waits) = (answered.unwrap_or(0.0), all_waits.unwrap_or(0.0));
        Ok((answered, answered.max(all_waits), polls))
    }

    /// Closes stdin; returns the time until the server exited and how
    /// many of `waits` were answered `killed` before its stdout closed.
    fn shut_down(&mut self, waits: HashSet<u64>) -> Result<(f64, usize), String> {
        let start = Instant::now();
        self.lines = None;
        let deadline = start + PHASE_DEADLINE;
        let mut killed = 0;
        let mut count = |response: Value| {
            let is_wait = response["id"]
                .as_u64()
                .is_some_and(|id| waits.contains(&id));
            killed += usize::from(is_wait && response["result"]["status"] == "killed");
        };
        let exited = loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => break start.elapsed().as_secs_f64(),
                Ok(Some(status)) => return Err(format!("procward serve exited with {status}")),
                Ok(None) => {}
                Err(err) => return Err(format!("waiting for procward serve: {err}")),
            }
            if Instant::now() > deadline {
                return Err("shutdown took too long".to_owned());
            }
            if let Ok((_, response)) = self.responses.recv_timeout(Duration::from_millis(1)) {
                count(response);
            }
        };
        // The reader thread ends at the end of the server's stdout.
        while let Ok((_, response)) = self.responses.recv_timeout(Duration::from_secs(5)) {
            count(response);
        }
        Ok((exited, killed))
    }

    /// Whether this build of the server takes `flag` (`serve --help`).
    fn takes(flag: &str) -> bool {
        Command::new(Self::binary())
            .args(["serve", "--help"])
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(flag))
    }

    fn binary() -> std::ffi::OsString {
        std::env::var_os("PROCWARD_SERVE_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_procward").into())
    }
}

impl Drop for Server {
    /// A server still running (the side failed midway) is asked to stop
    /// with SIGTERM, which kills and reaps what it runs; SIGKILL after 60 s.
    fn drop(&mut self) {
        use rustix::process::{Pid, Signal, kill_process};
        self.lines = None;
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        if let Some(pid) = Pid::from_raw(self.pid as i32) {
            let _ = kill_process(pid, Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `result` of a successful response, or its error as a string.
fn ok_result(mut response: Value) -> Result<Value, String> {
    if response["ok"] == true {
        Ok(response["result"].take())
    } else {
        Err(format!("procward serve answered {response}"))
    }
}

pub(super) fn serve_side(n: usize) -> Measured {
    let mut m = Measured {
        n,
        ..Measured::default()
    };
    if let Err(why) = serve_steps(n, &mut m) {
        eprintln!("  serve at {n}: {why}");
        m.note = Some(why);
    }
    m.left = left_behind();
    m
}

fn serve_steps(n: usize, m: &mut Measured) -> Result<(), String> {
    let mut server = Server::start(n)?;
    let pid = server.pid;
    for _ in 0..16 {
        let warm = server.call(json!({"op": "spawn", "argv": ["true"]}))?;
        let handle = warm["handle_id"].clone();
        server.call(json!({"op": "wait", "handle_id": handle}))?;
        server.call(json!({"op": "release", "handle_id": handle}))?;
    }
    let bystander = server
        .call(json!({"op": "spawn", "argv": ["sleep", "600"], "owner": BYSTANDER}))?["handle_id"]
        .as_str()
        .ok_or("a spawn answer without a handle id")?
        .to_owned();
    // A server that cannot hold a wait per child would stop reading before
    // the kill_owner line: then the bench keeps no waits, and says so.
    let hold_waits = server.holds_in_flight(n + 2, &bystander)?;
    if !hold_waits {
        m.note = Some(format!(
            "the server holds fewer than {n} requests in flight: no wait per child was kept"
        ));
    }
    let waits_for = |server: &mut Server, handles: &[String]| {
        if hold_waits {
            server.waits(handles)
        } else {
            Ok(HashSet::new())
        }
    };
    let sampler = Sampler::start(pid);
    let before = procfs::status_of(pid).ok_or("the server is gone")?;
    let fds_before = procfs::open_fds_of(pid);

    let (elapsed, handles) = server.burst(n)?;
    m.spawn.push(elapsed);
    let waits = waits_for(&mut server, &handles)?;
    std::thread::sleep(AFTER);
    record_burst(m, before, procfs::status_of(pid), sampler.stop());
    m.fds_per_child = procfs::open_fds_of(pid).saturating_sub(fds_before) as f64 / n as f64;

    let (answered, all, polls) = server.kill_owner(n, waits, &bystander)?;
    m.kill_answered = Some(answered);
    m.kill = Some(all);
    m.kill_polls = polls;
    server.call(json!({"op": "release_owner", "owner": OWNER}))?;

    let (elapsed, handles) = server.burst(n)?;
    m.spawn.push(elapsed);
    let waits = waits_for(&mut server, &handles)?;
    let (shutdown, answered) = server.shut_down(waits)?;
    m.shutdown = Some(shutdown);
    m.shutdown_waits_killed = hold_waits.then_some(answered);
    Ok(())
}
