//! `scale`: N running `sleep 600` children at once, for N on a ladder (100
//! to 5,000; to 1,000 with `--quick`). Each side spawns N in one burst and
//! keeps a wait per child, then kills them all (`kill_owner`), spawns N
//! again and shuts down with them running:
//!
//! - the library's `Registry`, in a probe process of its own (this bench
//!   started again with `--probe-scale library N`);
//! - a real `procward serve` process (the release binary, or the one
//!   `PROCWARD_SERVE_BIN` names) over stdin/stdout, with its default flags
//!   but `--max-handles` and an explicit `--shutdown-grace-ms 500`;
//! - raw `tokio::process` in a probe process: N `sleep`s with both pipes
//!   read by tasks and a wait task per child, then SIGKILL to each and a
//!   wait for all (its "shutdown" is the same kill of the second burst).
//!
//! Each side reports the burst's spawn time, RSS growth at the peak and
//! 12 s after the burst (3 s for raw), threads at the peak, descriptors per
//! child, the kill time (until answered and every wait returned), the p99
//! latency of an unrelated `poll` sent every 2 ms meanwhile, and the
//! shutdown time. N is capped so that a process holding N children stays
//! within `ulimit -n`. The ladder is printed as a table and drawn as an
//! SVG (docs/scale.svg for the full ladder).
//!
//! The bench is a child subreaper: whatever a probe or the server leaves
//! behind (even when one fails midway) comes to it and is SIGKILLed and
//! reaped; what was left is counted.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::Poll;
use std::time::{Duration, Instant};

use procward::{HandleId, KillRequest, Registry, RegistryConfig, SpawnRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::harness::{Row, Samples, Target, Unit};
use crate::plot::{Panel, Series};
use crate::{Opts, procfs, raw};

/// The flag that makes the bench binary a scale probe.
pub(crate) const PROBE_FLAG: &str = "--probe-scale";
/// The number of running children per step.
const LADDER: [usize; 5] = [100, 500, 1_000, 2_000, 5_000];
/// The last step of `--quick`.
const QUICK_TOP: usize = 1_000;
/// How long after the burst the "after" RSS is read: past tokio's 10 s
/// keep-alive of idle blocking threads, so that the threads a burst grew
/// are gone and what they held shows whether memory comes back.
const AFTER: Duration = Duration::from_secs(12);
/// The same for raw tokio::process, which grows no thread.
const RAW_AFTER: Duration = Duration::from_secs(3);
/// Descriptors kept for everything but the children (runtime, pipes to
/// the server, the guard, libraries).
const RESERVE_FDS: u64 = 512;
/// Descriptors per child procward holds today (two pipes, the pidfd and
/// the exit watcher's duplicate of it), until a step measures them.
const ASSUMED_FDS_PER_CHILD: f64 = 4.0;
/// The server's `--shutdown-grace-ms` (its default, given explicitly so
/// that the shutdown target is computed from what the server ran with).
const SHUTDOWN_GRACE_MS: u64 = 500;
/// How often the unrelated poll is sent while a kill or a shutdown runs.
const POLL_EVERY: Duration = Duration::from_millis(2);
/// How often threads and RSS are sampled during a burst.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);
/// The longest a kill or a shutdown may take before the side is given up
/// (today's code needs minutes at 5,000 through the server).
const PHASE_DEADLINE: Duration = Duration::from_secs(900);
/// The longest the server may leave request bytes unread before the bench
/// decides it stopped reading (an in-flight bound, say) and gives up.
const STALL: Duration = Duration::from_secs(20);
/// How long the waits of the in-flight check stay pending.
const HOLD: Duration = Duration::from_secs(5);
/// The owner of the burst's children.
const OWNER: &str = "scale";
/// The owner of the handle the unrelated polls read.
const BYSTANDER: &str = "bystander";

/// What one side measured at one step. Times in seconds, memory in bytes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Measured {
    /// Children per burst.
    n: usize,
    /// From the first spawn sent to the last one answered, per burst (the
    /// first burst, then the one before the shutdown).
    spawn: Vec<f64>,
    /// RSS before the first burst.
    rss_before: f64,
    /// Peak RSS (`VmHWM`) up to [`AFTER`] past the first burst.
    rss_peak: f64,
    /// RSS [`AFTER`] past the first burst.
    rss_after: f64,
    /// Threads before the first burst.
    threads_before: f64,
    /// Most threads seen from the first burst to [`AFTER`] past it.
    threads_peak: f64,
    /// Threads [`AFTER`] past the first burst.
    threads_after: f64,
    /// Open descriptors added by the first burst, per child.
    fds_per_child: f64,
    /// `kill_owner` (raw: SIGKILL to each) until answered.
    kill_answered: Option<f64>,
    /// The same, until answered and every wait has returned.
    kill: Option<f64>,
    /// Latencies of the unrelated polls sent during the kill.
    kill_polls: Vec<f64>,
    /// Shutdown with N running, until it returned (the server: until the
    /// process exited).
    shutdown: Option<f64>,
    /// Latencies of the unrelated polls sent during the shutdown, answered
    /// with a snapshot or an error.
    shutdown_polls: Vec<f64>,
    /// Of those, how many were answered with an error.
    shutdown_poll_errors: usize,
    /// Processes (zombies included) left behind once the side was done.
    left: usize,
    /// Of the waits pending at the shutdown, how many were answered
    /// `killed`.
    shutdown_waits_killed: Option<usize>,
    /// Why a part was not measured.
    note: Option<String>,
}

impl Measured {
    fn growth_peak(&self) -> f64 {
        (self.rss_peak - self.rss_before).max(0.0)
    }

    fn growth_after(&self) -> f64 {
        (self.rss_after - self.rss_before).max(0.0)
    }

    fn first_spawn(&self) -> Option<f64> {
        self.spawn.first().copied()
    }
}

/// The three sides at one step.
struct Step {
    n: usize,
    raw: Measured,
    library: Measured,
    serve: Measured,
}

/// Samples the threads of a process while a burst runs.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut threads = 0;
            while !stopping.load(Ordering::Relaxed) {
                if let Some(status) = procfs::status_of(pid) {
                    threads = threads.max(status.threads);
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
            threads
        });
        Sampler { stop, thread }
    }

    /// The most threads seen.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

fn sleep_request() -> SpawnRequest {
    SpawnRequest::argv(["sleep", "600"])
}

/// Runs in the probe process: measures `side` (`library` or `raw`) at `n`
/// children and prints the [`Measured`] as one JSON line.
pub(crate) fn probe(side: &str, n: usize) {
    procfs::ensure_fd_limit(u64::MAX);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut measured = runtime.block_on(async {
        match side {
            "library" => library_side(n).await,
            _ => raw_side(n).await,
        }
    });
    drop(runtime);
    measured.left = left_behind();
    println!(
        "{}",
        serde_json::to_string(&measured).expect("serializing a measurement")
    );
}

/// Waits up to a second for this process to have no child, then counts
/// (and SIGKILLs and reaps) those still there.
fn left_behind() -> usize {
    let deadline = Instant::now() + Duration::from_secs(1);
    while !procfs::children().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    procfs::kill_and_reap_children()
}

/// Polls `id` every [`POLL_EVERY`] on a task of its own until stopped;
/// records each poll's latency, whatever the answer.
struct Poller {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(Vec<f64>, usize)>,
}

impl Poller {
    fn start(registry: &Registry, id: HandleId) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let registry = registry.clone();
        let task = tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0);
            while !stopping.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let answer = registry.poll(id).await;
                latencies.push(sent.elapsed().as_secs_f64());
                errors += usize::from(answer.is_err());
                tokio::time::sleep(POLL_EVERY).await;
            }
            (latencies, errors)
        });
        Poller { stop, task }
    }

    async fn stop(self) -> (Vec<f64>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

/// Spawns `n` children at once, each on a task that then waits for it;
/// returns the time until every spawn was answered, and the wait tasks
/// (each ends with whether the child ended killed).
async fn library_burst(registry: &Registry, n: usize) -> (f64, JoinSet<bool>) {
    let (spawned, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let mut waits = JoinSet::new();
    let start = Instant::now();
    for _ in 0..n {
        let registry = registry.clone();
        let spawned = spawned.clone();
        waits.spawn(async move {
            let id = match registry.spawn(sleep_request().owner(OWNER)).await {
                Ok(snapshot) => snapshot.handle_id,
                Err(err) => {
                    let _ = spawned.send(Err(err.to_string()));
                    return false;
                }
            };
            // The wait's first poll sends its request; only then does the
            // child count as spawned and waited on, so that a shutdown
            // that follows the burst finds every wait already sent.
            let wait = registry.wait(id, None);
            tokio::pin!(wait);
            let first = std::future::poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx))).await;
            let _ = spawned.send(Ok(()));
            let done = match first {
                Poll::Ready(done) => done,
                Poll::Pending => wait.await,
            };
            matches!(done, Ok(done) if done.snapshot.status == procward::Status::Killed)
        });
    }
    drop(spawned);
    for _ in 0..n {
        match answers.recv().await {
            Some(Ok(())) => {}
            Some(Err(err)) => panic!("a burst spawn failed: {err}"),
            None => panic!("a burst task ended without answering"),
        }
    }
    (start.elapsed().as_secs_f64(), waits)
}

async fn library_side(n: usize) -> Measured {
    let me = std::process::id();
    let registry = Registry::start(RegistryConfig::default().max_handles(n + 64))
        .await
        .expect("registry start");
    // Warm-up: runtime threads, ractor, the allocator's arenas.
    for _ in 0..32 {
        let warm = registry.spawn(sleep_request()).await.expect("spawn");
        registry.release(warm.handle_id).await.expect("release");
    }
    let bystander = registry
        .spawn(sleep_request().owner(BYSTANDER))
        .await
        .expect("spawn")
        .handle_id;
    let mut m = Measured {
        n,
        ..Measured::default()
    };
    let sampler = Sampler::start(me);
    procfs::reset_peak();
    let before = procfs::status_of(me).expect("own status");
    let fds_before = procfs::open_fds();

    let (elapsed, mut waits) = library_burst(&registry, n).await;
    m.spawn.push(elapsed);
    tokio::time::sleep(AFTER).await;
    record_burst(&mut m, before, procfs::status_of(me), sampler.stop());
    m.fds_per_child = procfs::open_fds().saturating_sub(fds_before) as f64 / n as f64;

    let polls = Poller::start(&registry, bystander);
    let start = Instant::now();
    let killed = registry
        .kill_owner(OWNER, KillRequest::default())
        .await
        .expect("kill_owner");
    m.kill_answered = Some(start.elapsed().as_secs_f64());
    assert_eq!(killed.len(), n, "kill_owner killed every child");
    let mut not_killed = 0;
    while let Some(done) = waits.join_next().await {
        not_killed += usize::from(!done.unwrap_or(false));
    }
    m.kill = Some(start.elapsed().as_secs_f64());
    assert_eq!(not_killed, 0, "every wait answered `killed`");
    m.kill_polls = polls.stop().await.0;
    registry.release_owner(OWNER).await.expect("release_owner");

    let (elapsed, mut waits) = library_burst(&registry, n).await;
    m.spawn.push(elapsed);
    let polls = Poller::start(&registry, bystander);
    let start = Instant::now();
    registry.shutdown().await.expect("registry shutdown");
    m.shutdown = Some(start.elapsed().as_secs_f64());
    (m.shutdown_polls, m.shutdown_poll_errors) = polls.stop().await;
    let mut killed = 0;
    while let Some(done) = waits.join_next().await {
        killed += usize::from(done.unwrap_or(false));
    }
    m.shutdown_waits_killed = Some(killed);
    m
}

/// Fills in what the first burst cost, from the status before it and now.
fn record_burst(
    m: &mut Measured,
    before: procfs::Status,
    now: Option<procfs::Status>,
    threads_peak: u64,
) {
    let now = now.unwrap_or_default();
    m.rss_before = before.rss as f64;
    m.rss_peak = now.peak_rss as f64;
    m.rss_after = now.rss as f64;
    m.threads_before = before.threads as f64;
    m.threads_peak = threads_peak.max(now.threads) as f64;
    m.threads_after = now.threads as f64;
}

/// `n` raw children, each with its pipes read by tasks and a wait task;
/// returns the kill switches and the wait tasks.
fn raw_burst(n: usize) -> (Vec<tokio::sync::oneshot::Sender<()>>, JoinSet<()>) {
    let mut kills = Vec::with_capacity(n);
    let mut waits = JoinSet::new();
    for _ in 0..n {
        let child = raw::Running::spawn(raw::command(&["sleep", "600"]));
        let (kill, killed) = tokio::sync::oneshot::channel();
        kills.push(kill);
        waits.spawn(child.wait_or_kill(killed));
    }
    (kills, waits)
}

/// SIGKILL to every child through its wait task, and the time until every
/// wait task has seen its child exit and its pipes close.
async fn raw_kill_all(kills: Vec<tokio::sync::oneshot::Sender<()>>, mut waits: JoinSet<()>) -> f64 {
    let start = Instant::now();
    for kill in kills {
        let _ = kill.send(());
    }
    while let Some(done) = waits.join_next().await {
        done.expect("a raw wait task panicked");
    }
    start.elapsed().as_secs_f64()
}

async fn raw_side(n: usize) -> Measured {
    let me = std::process::id();
    let (kills, waits) = raw_burst(32);
    raw_kill_all(kills, waits).await;
    let mut m = Measured {
        n,
        ..Measured::default()
    };
    let sampler = Sampler::start(me);
    procfs::reset_peak();
    let before = procfs::status_of(me).expect("own status");
    let fds_before = procfs::open_fds();

    let start = Instant::now();
    let (kills, waits) = raw_burst(n);
    m.spawn.push(start.elapsed().as_secs_f64());
    tokio::time::sleep(RAW_AFTER).await;
    record_burst(&mut m, before, procfs::status_of(me), sampler.stop());
    m.fds_per_child = procfs::open_fds().saturating_sub(fds_before) as f64 / n as f64;
    let killed = raw_kill_all(kills, waits).await;
    m.kill_answered = Some(killed);
    m.kill = Some(killed);

    let start = Instant::now();
    let (kills, waits) = raw_burst(n);
    m.spawn.push(start.elapsed().as_secs_f64());
    m.shutdown = Some(raw_kill_all(kills, waits).await);
    m.shutdown_waits_killed = Some(n);
    m
}

/// Runs one probe process; a probe that fails is reported, and whatever
/// it left is killed and reaped.
fn run_probe(side: &str, n: usize) -> Measured {
    let exe = std::env::current_exe().expect("current exe");
    let output = Command::new(exe)
        .args([PROBE_FLAG, side, &n.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("starting the scale probe");
    let left = procfs::kill_and_reap_children();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let parsed = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str::<Measured>(line).ok());
    match parsed {
        Some(mut measured) if output.status.success() => {
            measured.left += left;
            measured
        }
        _ => Measured {
            n,
            left,
            note: Some(format!("the {side} probe failed ({})", output.status)),
            ..Measured::default()
        },
    }
}

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

fn serve_side(n: usize) -> Measured {
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

/// Kills and reaps whatever the bench's children left, however the group
/// ends (a panic included).
struct Reaper;

impl Drop for Reaper {
    fn drop(&mut self) {
        let left = procfs::kill_and_reap_children();
        if left > 0 {
            eprintln!("  killed and reaped {left} processes left behind");
        }
    }
}

pub(crate) fn scale(opts: &Opts) -> Vec<Row> {
    let _reaper = Reaper;
    procfs::become_subreaper();
    let (before, limit) = procfs::ensure_fd_limit(u64::MAX);
    let limit = limit.unwrap_or(u64::MAX);
    eprintln!(
        "  ulimit -n: {} (raised from {}); {RESERVE_FDS} kept for other descriptors",
        limit,
        before.map_or("unlimited".to_owned(), |b| b.to_string())
    );
    let ladder: Vec<usize> = match &opts.scale_ladder {
        Some(ladder) => ladder.clone(),
        None if opts.quick => LADDER.iter().copied().filter(|&n| n <= QUICK_TOP).collect(),
        None => LADDER.to_vec(),
    };
    let mut fds_per_child = ASSUMED_FDS_PER_CHILD;
    let mut steps: Vec<Step> = Vec::new();
    for (i, &wanted) in ladder.iter().enumerate() {
        let cap = (limit.saturating_sub(RESERVE_FDS) as f64 / fds_per_child) as usize;
        let n = wanted.min(cap);
        if n < wanted {
            eprintln!(
                "  {wanted} children need more descriptors than ulimit -n {limit} allows at \
                 {fds_per_child} per child: measuring {n}"
            );
        }
        if steps.last().is_some_and(|step| step.n >= n) {
            continue;
        }
        let (mut raw, mut library, mut serve) = (None, None, None);
        // Rotate the order so that drift hits every side alike.
        for k in 0..3 {
            match (i + k) % 3 {
                0 => raw = Some(run_probe("raw", n)),
                1 => library = Some(run_probe("library", n)),
                _ => serve = Some(serve_side(n)),
            }
        }
        let step = Step {
            n,
            raw: raw.unwrap_or_default(),
            library: library.unwrap_or_default(),
            serve: serve.unwrap_or_default(),
        };
        eprintln!(
            "  {n}: spawn raw {} lib {} serve {}; kill raw {} lib {} serve {}; shutdown lib {} serve {}",
            secs(step.raw.first_spawn()),
            secs(step.library.first_spawn()),
            secs(step.serve.first_spawn()),
            secs(step.raw.kill),
            secs(step.library.kill),
            secs(step.serve.kill),
            secs(step.library.shutdown),
            secs(step.serve.shutdown),
        );
        // Cap later steps by what procward was seen to hold per child.
        let measured = step.library.fds_per_child.max(step.serve.fds_per_child);
        if measured > 0.0 {
            fds_per_child = ((measured * 10.0).round() / 10.0).ceil().max(1.0);
        }
        steps.push(step);
    }
    println!("\n{}", ladder_table(&steps));
    if steps.len() >= 2 {
        write_plot(&steps, opts);
    }
    rows(&steps)
}

fn secs(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |s| format!("{s:.2} s"))
}

fn one(value: Option<f64>) -> Samples {
    let mut samples = Samples::default();
    if let Some(value) = value {
        samples.push(value);
    }
    samples
}

fn all(values: &[f64]) -> Samples {
    let mut samples = Samples::default();
    for &value in values {
        samples.push(value);
    }
    samples
}

/// Bursts as children spawned per second.
fn spawn_rates(m: &Measured) -> Samples {
    all(&m.spawn.iter().map(|s| m.n as f64 / s).collect::<Vec<_>>())
}

/// The step's samples of a figure, or none when the side measured none.
fn measured<T>(m: &Measured, figure: impl Fn(&Measured) -> T) -> Option<T> {
    (m.note.is_none() || !m.spawn.is_empty()).then(|| figure(m))
}

/// The rows with targets: issue 12's at 1,000 children, issue 20's at the
/// top step.
fn rows(steps: &[Step]) -> Vec<Row> {
    let mut rows = Vec::new();
    let grace = SHUTDOWN_GRACE_MS as f64 / 1e3;
    if let Some(step) = steps.iter().find(|step| step.n == 1_000) {
        let n = step.n;
        for (side, m) in [("serve", &step.serve), ("library", &step.library)] {
            rows.push(
                Row::new(
                    format!("scale {n}: `kill_owner` until all terminal, {side}"),
                    Unit::Seconds,
                    one(m.kill),
                )
                .baseline("tokio::process kill + wait all", one(step.raw.kill))
                .target(Target::Absolute(1.0), "≤ 1 s"),
            );
            rows.push(
                Row::new(
                    format!("scale {n}: unrelated poll during `kill_owner`, {side}"),
                    Unit::Seconds,
                    all(&m.kill_polls),
                )
                .target(Target::Absolute(10e-3), "≤ 10 ms p99")
                .p99(),
            );
        }
        rows.push(
            Row::new(
                format!("scale {n}: shutdown with {n} running, serve (close stdin to exit)"),
                Unit::Seconds,
                one(step.serve.shutdown),
            )
            .baseline("tokio::process kill + wait all", one(step.raw.shutdown))
            .target(
                Target::Absolute(grace + 1.0),
                format!("≤ grace {grace} s + 1 s"),
            ),
        );
        rows.push(
            Row::new(
                format!("scale {n}: shutdown with {n} running, library"),
                Unit::Seconds,
                one(step.library.shutdown),
            )
            .baseline("tokio::process kill + wait all", one(step.raw.shutdown))
            .target(Target::Absolute(1.0), "≤ 1 s (no grace)"),
        );
        rows.push(
            Row::new(
                format!(
                    "scale {n}: unrelated poll during shutdown, library ({} of {} answered with an error)",
                    step.library.shutdown_poll_errors,
                    step.library.shutdown_polls.len()
                ),
                Unit::Seconds,
                all(&step.library.shutdown_polls),
            )
            .target(Target::None, "≤ 10 ms p99; not judged on errors")
            .p99(),
        );
    }
    let Some(top) = steps.last() else {
        return rows;
    };
    let n = top.n;
    let (serve, library, raw) = (&top.serve, &top.library, &top.raw);
    let per_child = |growth: f64| growth / n as f64;
    rows.extend([
        Row::new(
            format!("scale {n}: burst spawn, serve"),
            Unit::PerSec,
            spawn_rates(serve),
        )
        .baseline("tokio::process spawn loop", spawn_rates(raw))
        .paired()
        .target(Target::Ratio(0.8), "≥ 0.80×"),
        Row::new(
            format!("scale {n}: burst spawn time, serve"),
            Unit::Seconds,
            one(serve.first_spawn()),
        )
        .baseline("tokio::process spawn loop", one(raw.first_spawn()))
        .target(Target::Absolute(5.0), "≤ 5 s"),
        Row::new(
            format!("scale {n}: burst spawn, library"),
            Unit::PerSec,
            spawn_rates(library),
        )
        .baseline("tokio::process spawn loop", spawn_rates(raw))
        .paired(),
        Row::new(
            format!("scale {n}: server RSS growth at peak"),
            Unit::Bytes,
            one(measured(serve, Measured::growth_peak)),
        )
        .baseline("tokio::process, same process", one(Some(raw.growth_peak())))
        .target(Target::Absolute(100.0 * 1024.0 * 1024.0), "≤ 100 MiB"),
        Row::new(
            format!("scale {n}: server RSS per child at peak"),
            Unit::Bytes,
            one(measured(serve, |m| per_child(m.growth_peak()))),
        )
        .baseline(
            "library, same burst",
            one(measured(library, |m| per_child(m.growth_peak()))),
        )
        .target(Target::Absolute(16.0 * 1024.0), "≤ 16 KiB"),
        Row::new(
            format!(
                "scale {n}: server RSS per child {} s after the burst",
                AFTER.as_secs()
            ),
            Unit::Bytes,
            one(measured(serve, |m| per_child(m.growth_after()))),
        )
        .baseline(
            "library, same burst",
            one(measured(library, |m| per_child(m.growth_after()))),
        )
        .target(Target::Absolute(16.0 * 1024.0), "≤ 16 KiB"),
        Row::new(
            format!("scale {n}: server threads at peak"),
            Unit::Count,
            one(measured(serve, |m| m.threads_peak)),
        )
        .baseline("tokio::process, same process", one(Some(raw.threads_peak))),
        Row::new(
            format!("scale {n}: server descriptors per child"),
            Unit::Count,
            one(measured(serve, |m| m.fds_per_child)),
        )
        .baseline("tokio::process", one(Some(raw.fds_per_child)))
        .target(Target::Absolute(3.0), "≤ 3"),
        Row::new(
            format!("scale {n}: `kill_owner` until all terminal, serve"),
            Unit::Seconds,
            one(serve.kill),
        )
        .baseline("tokio::process kill + wait all", one(raw.kill))
        .target(Target::Absolute(2.0), "≤ 2 s"),
        Row::new(
            format!("scale {n}: unrelated poll during `kill_owner`, serve"),
            Unit::Seconds,
            all(&serve.kill_polls),
        )
        .target(Target::Absolute(10e-3), "≤ 10 ms p99")
        .p99(),
        Row::new(
            format!("scale {n}: shutdown with {n} running, serve"),
            Unit::Seconds,
            one(serve.shutdown),
        )
        .baseline("tokio::process kill + wait all", one(raw.shutdown))
        .target(
            Target::Absolute(grace + 2.0),
            format!("≤ grace {grace} s + 2 s"),
        ),
        Row::new(
            format!("scale {n}: processes left after the server exited"),
            Unit::Count,
            one(measured(serve, |m| m.left as f64)),
        )
        .target(Target::Absolute(0.0), "none"),
    ]);
    rows
}

/// The whole ladder, one column per step.
fn ladder_table(steps: &[Step]) -> String {
    type Cell = fn(&Measured) -> Option<String>;
    fn time(value: Option<f64>) -> Option<String> {
        value.map(|s| Unit::Seconds.format(s))
    }
    fn p99(values: &[f64]) -> Option<String> {
        (!values.is_empty()).then(|| Unit::Seconds.format(all(values).percentile(0.99)))
    }
    let lines: [(&str, Cell); 12] = [
        ("burst spawn (first; second)", |m| {
            (!m.spawn.is_empty()).then(|| {
                m.spawn
                    .iter()
                    .map(|s| Unit::Seconds.format(*s))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        }),
        ("RSS growth at peak", |m| {
            (m.rss_peak > 0.0).then(|| Unit::Bytes.format(m.growth_peak()))
        }),
        ("RSS growth after the burst (raw 3 s, others 12 s)", |m| {
            (m.rss_peak > 0.0).then(|| Unit::Bytes.format(m.growth_after()))
        }),
        ("RSS per child at peak; after", |m| {
            (m.rss_peak > 0.0).then(|| {
                format!(
                    "{}; {}",
                    Unit::Bytes.format(m.growth_peak() / m.n as f64),
                    Unit::Bytes.format(m.growth_after() / m.n as f64)
                )
            })
        }),
        ("threads before → peak → after", |m| {
            (m.threads_peak > 0.0).then(|| {
                format!(
                    "{} → {} → {}",
                    m.threads_before, m.threads_peak, m.threads_after
                )
            })
        }),
        ("descriptors per child", |m| {
            (m.rss_peak > 0.0).then(|| format!("{:.2}", m.fds_per_child))
        }),
        ("kill all: answered; all waits returned", |m| {
            Some(format!("{}; {}", time(m.kill_answered)?, time(m.kill)?))
        }),
        ("unrelated poll during the kill, p99 (n)", |m| {
            Some(format!("{} ({})", p99(&m.kill_polls)?, m.kill_polls.len()))
        }),
        ("shutdown with N running", |m| time(m.shutdown)),
        ("waits answered `killed` at shutdown", |m| {
            m.shutdown_waits_killed.map(|k| format!("{k} of {}", m.n))
        }),
        ("unrelated poll during shutdown, p99 (n, errors)", |m| {
            Some(format!(
                "{} ({}, {})",
                p99(&m.shutdown_polls)?,
                m.shutdown_polls.len(),
                m.shutdown_poll_errors
            ))
        }),
        ("processes left behind", |m| Some(m.left.to_string())),
    ];
    let mut out = String::from("| figure | side |");
    for step in steps {
        out.push_str(&format!(" N = {} |", step.n));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(steps.len()));
    for (figure, cell) in lines {
        for (side, pick) in [
            ("raw", (|s: &Step| &s.raw) as fn(&Step) -> &Measured),
            ("library", |s: &Step| &s.library),
            ("serve", |s: &Step| &s.serve),
        ] {
            let cells: Vec<String> = steps
                .iter()
                .map(|step| cell(pick(step)).unwrap_or_else(|| "—".to_owned()))
                .collect();
            if cells.iter().all(|c| c == "—") {
                continue;
            }
            out.push_str(&format!("\n| {figure} | {side} | {} |", cells.join(" | ")));
        }
    }
    for step in steps {
        for (side, m) in [
            ("raw", &step.raw),
            ("library", &step.library),
            ("serve", &step.serve),
        ] {
            if let Some(note) = &m.note {
                out.push_str(&format!("\n\n{side} at N = {}: {note}", step.n));
            }
        }
    }
    out
}

/// Draws spawn time, kill time and RSS growth against N, each side a line.
fn write_plot(steps: &[Step], opts: &Opts) {
    type Side = fn(&Step) -> &Measured;
    let sides: [(&str, &str, Side); 3] = [
        ("procward serve", "#d62728", |s| &s.serve),
        ("procward library", "#1f77b4", |s| &s.library),
        ("raw tokio::process", "#7f7f7f", |s| &s.raw),
    ];
    let series = |value: fn(&Measured) -> Option<f64>| -> Vec<Series> {
        sides
            .iter()
            .map(|(name, color, pick)| Series {
                name: (*name).to_owned(),
                color: (*color).to_owned(),
                points: steps
                    .iter()
                    .filter_map(|step| Some((step.n as f64, value(pick(step))?)))
                    .filter(|&(_, y)| y > 0.0)
                    .collect(),
            })
            .collect()
    };
    let panels = [
        Panel {
            title: "Burst spawn of N (until all answered)".to_owned(),
            unit: Unit::Seconds,
            series: series(|m| m.first_spawn()),
        },
        Panel {
            title: "Kill all N (until all terminal)".to_owned(),
            unit: Unit::Seconds,
            series: series(|m| m.kill),
        },
        Panel {
            title: "RSS growth at peak".to_owned(),
            unit: Unit::Bytes,
            series: series(|m| (m.rss_peak > 0.0).then(|| m.growth_peak())),
        },
    ];
    let svg = crate::plot::svg(
        "procward at scale: N running `sleep` children (log–log)",
        &panels,
    );
    let path = match (&opts.scale_svg, opts.quick || opts.scale_ladder.is_some()) {
        (Some(path), _) => path.clone(),
        (None, false) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/scale.svg"),
        (None, true) => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scale.svg"),
    };
    match std::fs::write(&path, svg) {
        Ok(()) => eprintln!("  plot written to {}", path.display()),
        Err(err) => eprintln!("  could not write {}: {err}", path.display()),
    }
}
