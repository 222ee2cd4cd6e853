//! `procward`: a JSON-lines process host for programs in any language,
//! and the operator's command line for it.
//!
//! `procward serve` reads one JSON request per line on stdin and writes one
//! JSON response per line on stdout (or serves the same protocol on a Unix
//! socket with `--socket`). `procward ctl --socket PATH` looks at and acts
//! on a running socket server from a shell. Logs go to stderr, filtered by
//! `RUST_LOG`. See docs/protocol.md.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod ctl;
#[cfg(feature = "cluster")]
mod node;
mod serve;
mod stdio;

/// The server makes and frees many small buffers on several threads at
/// once; mimalloc's per-thread heaps keep glibc's malloc locks out of
/// that path (docs/performance.md). The library leaves the allocator to
/// the program that embeds it, which is why this lives in the program.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long the runtime may take to stop after serving. The blocking read
/// of stdin cannot be cancelled, so waiting for it could hang forever.
const RUNTIME_STOP_WAIT: Duration = Duration::from_millis(200);

#[derive(Debug, Parser)]
#[command(
    name = "procward",
    version,
    about = "Supervise OS processes for programs in any language"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the JSON-lines protocol on stdin/stdout (or a Unix socket).
    ///
    /// One JSON request per line in, one JSON response per line out,
    /// matched by `id`; requests run concurrently. On end of stdin, SIGTERM
    /// or SIGINT, every running process tree is killed and reaped, pending
    /// responses are flushed and the server exits 0. See docs/protocol.md.
    Serve(serve::ServeArgs),

    /// Look at and act on a running `procward serve --socket PATH`.
    ///
    /// Exits 0 on success and 1 on an error (no server at the path,
    /// permission denied, an unknown handle, a refused request), with the
    /// reason on stderr; `tail -f` exits with the child's exit code.
    Ctl(ctl::CtlArgs),

    /// Run a registry that other nodes reach through ractor_cluster.
    ///
    /// Clients authenticate with the magic cookie in --cookie-file (mode
    /// 600, not empty). On SIGTERM or SIGINT every process is killed and
    /// reaped. See docs/cluster.md.
    #[cfg(feature = "cluster")]
    Node(node::NodeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Ctl(args) => return ctl::main(args),
        #[cfg(feature = "cluster")]
        Command::Node(args) => return node::main(args),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(%err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    // On a worker rather than in `block_on`'s own thread: the reading loop
    // then shares the workers with the requests it spawns, and its yields
    // let them run (see `json::serve`), instead of reading ahead of them
    // through a whole burst of pipelined requests.
    let served = runtime.block_on(async {
        tokio::spawn(serve::serve(args))
            .await
            .unwrap_or_else(|err| Err(format!("the server task failed: {err}").into()))
    });
    runtime.shutdown_timeout(RUNTIME_STOP_WAIT);
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            eprintln!("procward: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr only: stdout carries the protocol.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
