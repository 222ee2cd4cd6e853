//! `procward serve`: the JSON-lines protocol on stdin/stdout or a Unix
//! socket (docs/protocol.md).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use procward::json::{
    self, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_BYTES, DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_OUTPUT_CAP, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_UNSENT_BYTES,
    DEFAULT_SHUTDOWN_GRACE, Dispatcher, OwnerBinding, ServeOptions, SocketOptions,
};
use procward::{CgroupMode, Registry, RegistryConfig};
use tokio::signal::unix::{SignalKind, signal};

use crate::stdio;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Handles (running or finished) kept before a spawn evicts the oldest.
    #[arg(long, value_name = "N", default_value_t = RegistryConfig::default().max_handles,
          value_parser = at_least_one)]
    max_handles: usize,

    /// What a spawn does when every one of --max-handles handles runs:
    /// `evict` (kill and evict the oldest running one), `refuse` (answer
    /// `registry_full`), or `queue` / `queue:N` (wait for a place, at most
    /// N spawns waiting, 1024 by default).
    #[arg(long, value_name = "POLICY", default_value = "evict")]
    cap_policy: procward::CapPolicy,

    /// Per-stream capture cap in bytes (head and tail kept past it), unless
    /// a spawn sets its own `output_cap`.
    #[arg(long, value_name = "BYTES", default_value_t = RegistryConfig::default().output_cap,
          value_parser = at_least_one)]
    output_cap: usize,

    /// The largest `output_cap` a spawn may ask for; a spawn above it is
    /// refused (`invalid_request`). `--output-cap` may not exceed it.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_OUTPUT_CAP,
          value_parser = at_least_one)]
    max_output_cap: usize,

    /// After a process exits, how long to keep reading output its
    /// descendants still write before killing what is left of its group.
    #[arg(long, value_name = "MS", default_value_t = millis(RegistryConfig::default().drain_grace))]
    drain_grace_ms: u64,

    /// For a kill with a signal other than KILL and no `grace_ms`: how long
    /// to wait before SIGKILL.
    #[arg(long, value_name = "MS", default_value_t = millis(RegistryConfig::default().kill_grace))]
    kill_grace_ms: u64,

    /// At shutdown (or when a socket connection closes): time between
    /// SIGTERM and SIGKILL for each running process tree. 0 sends SIGKILL
    /// at once.
    #[arg(long, value_name = "MS", default_value_t = millis(DEFAULT_SHUTDOWN_GRACE))]
    shutdown_grace_ms: u64,

    /// Longest request line accepted, in bytes; a longer one is answered
    /// with an error and skipped.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE_BYTES,
          value_parser = at_least_one)]
    max_line_bytes: usize,

    /// The most output bytes of one stream that one response carries
    /// (`poll`, `wait`, `read`, `pause`, `resume`); a request's `max_bytes`
    /// can only lower it. A stream cut by it is flagged.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_RESPONSE_BYTES)]
    max_response_bytes: usize,

    /// A connection (stdin/stdout or a socket connection) is not read while
    /// more than this many bytes of its responses wait to be written.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_UNSENT_BYTES)]
    max_unsent_bytes: usize,

    /// A connection is not read while this many of its requests are read
    /// and not yet answered (pending waits included).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_IN_FLIGHT,
          value_parser = at_least_one)]
    max_in_flight: usize,

    /// A connection is not read on while the request lines of its requests
    /// not yet answered add up to this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_IN_FLIGHT_BYTES,
          value_parser = at_least_one)]
    max_in_flight_bytes: usize,

    /// Serve on a Unix socket at PATH (created with mode 0600) instead of
    /// stdin/stdout. All connections share one registry; a connection's
    /// processes are killed when it closes, unless spawned with
    /// `outlive_connection`. Stops on SIGTERM or SIGINT only.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,

    /// Socket mode: what the owners a connection names are bound to.
    /// `free`: what the request says; `uid`: the peer's uid
    /// (`uid:1000/owner`); `connection`: the connection (`conn:7/owner`).
    #[arg(long, value_name = "BINDING", value_enum, default_value_t = Owners::Free,
          requires = "socket")]
    socket_owners: Owners,

    /// Socket mode: a connection sees and touches only the handles whose
    /// owner is bound to it (needs `--socket-owners uid` or `connection`).
    #[arg(long, requires = "socket")]
    socket_isolate: bool,

    /// Do not become a child subreaper. By default the server adopts the
    /// orphans of the trees it spawns and reaps them, so that no zombie
    /// outlives a kill.
    #[arg(long)]
    no_reap_orphans: bool,

    /// Do not hunt escapees (process-group containment only; a cgroup holds
    /// them anyway). By default every spawn then carries a
    /// `PROCWARD_TOKEN` in its environment, and when its handle ends every
    /// process still carrying it is killed, even one that left the process
    /// group with `setsid`.
    #[arg(long)]
    no_kill_escapees: bool,

    /// Run no guard process. By default a small `sh` guard kills every
    /// tree the server started if the server itself is SIGKILLed or
    /// crashes (through the server's cgroup, or by the trees'
    /// `PROCWARD_TOKEN` under process groups).
    #[arg(long)]
    no_guard: bool,

    /// The cgroup v2 directory under which the server makes its own cgroup,
    /// one per spawned tree (see docs/security.md). Without it the server
    /// uses its own cgroup when it can write there, and process groups
    /// otherwise (logged at start, and `containment` in every snapshot).
    /// When given, a server that cannot make its cgroup there does not
    /// start.
    #[arg(long, value_name = "PATH", conflicts_with = "no_cgroup")]
    cgroup_root: Option<PathBuf>,

    /// Contain trees in process groups only, never in cgroups.
    #[arg(long)]
    no_cgroup: bool,

    /// A JSON file with the spawn policy every request passes and the
    /// named profiles a spawn may ask for with `sandbox_profile` (see
    /// docs/security.md). Without it every spawn is allowed and every
    /// `sandbox_profile` is denied.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

/// `--socket-owners`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Owners {
    Free,
    Uid,
    Connection,
}

impl From<Owners> for OwnerBinding {
    fn from(owners: Owners) -> Self {
        match owners {
            Owners::Free => OwnerBinding::Free,
            Owners::Uid => OwnerBinding::PeerUid,
            Owners::Connection => OwnerBinding::Connection,
        }
    }
}

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(err) => Err(err.to_string()),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) async fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Listen for the signals before anything can be spawned, so that an
    // early SIGTERM still shuts down cleanly.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    // The signals are awaited on a task of their own: the server polls
    // `stop` before every request line it reads, and polling tokio's
    // signal streams costs several hundred instructions (callgrind: 3 % of
    // a request); polling a oneshot is an atomic load.
    let (stopping, stopped) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down");
        let _ = stopping.send(());
    });
    let stop = async move {
        // Only a signal sends; the sender is dropped unsent only when the
        // runtime shuts down, and stopping is right then too.
        let _ = stopped.await;
    };
    if args.output_cap > args.max_output_cap {
        return Err(format!(
            "--output-cap {} is above --max-output-cap {}",
            args.output_cap, args.max_output_cap
        )
        .into());
    }
    if args.socket_isolate && args.socket_owners == Owners::Free {
        return Err("--socket-isolate needs --socket-owners uid or connection".into());
    }
    let config = RegistryConfig::default()
        .max_handles(args.max_handles)
        .cap_policy(args.cap_policy)
        .output_cap(args.output_cap)
        .drain_grace(Duration::from_millis(args.drain_grace_ms))
        .kill_grace(Duration::from_millis(args.kill_grace_ms))
        .reap_orphans(!args.no_reap_orphans)
        .kill_escapees(!args.no_kill_escapees)
        .guard(!args.no_guard);
    let config = match (&args.cgroup_root, args.no_cgroup) {
        (Some(root), _) => config.cgroup(CgroupMode::Required).cgroup_root(root),
        (None, true) => config.cgroup(CgroupMode::Off),
        (None, false) => config,
    };
    let config = match &args.config {
        Some(path) => json::ServeConfig::load(path)?.apply(config),
        None => config,
    };
    let registry = Registry::start(config).await?;
    let dispatcher = Dispatcher::new(registry).with_max_output_cap(args.max_output_cap);
    let options = ServeOptions::default()
        .max_line_bytes(args.max_line_bytes)
        .shutdown_grace(Duration::from_millis(args.shutdown_grace_ms))
        .max_response_bytes(args.max_response_bytes)
        .max_unsent_bytes(args.max_unsent_bytes)
        .max_in_flight(args.max_in_flight)
        .max_in_flight_bytes(args.max_in_flight_bytes);
    match &args.socket {
        Some(path) => {
            let socket = SocketOptions::default()
                .owners(args.socket_owners.into())
                .isolate(args.socket_isolate);
            json::serve_socket(dispatcher, path, &options, &socket, stop).await?;
        }
        None => {
            let (input, read) = stdio::input();
            let (output, written) = stdio::output();
            tracing::debug!(%read, %written, "serving on stdin and stdout");
            json::serve_with(dispatcher, input, output, &options, stop).await?;
        }
    }
    Ok(())
}
