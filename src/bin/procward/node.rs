//! `procward node`: the command line and the runtime of a cluster node;
//! the node itself is [`procward::cluster::run_node`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use procward::RegistryConfig;
use procward::cluster::{NodeOptions, run_node};
use procward::json::ServeConfig;
use tokio::signal::unix::{SignalKind, signal};

use crate::RUNTIME_STOP_WAIT;

/// Arguments of `procward node`.
#[derive(Debug, clap::Args)]
pub(crate) struct NodeArgs {
    /// Address and port to listen on for other nodes and clients, e.g.
    /// 127.0.0.1:7400.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: SocketAddr,

    /// This node's name; clients address spawns to it.
    #[arg(long, value_name = "NAME")]
    name: String,

    /// File holding the cluster's magic cookie; must be owned by the user
    /// the node runs as, private to it (mode 600) and not empty.
    #[arg(long, value_name = "PATH")]
    cookie_file: PathBuf,

    /// PEM file with this node's certificate (then any intermediates).
    /// With --tls-key, the node accepts TLS sessions only (TLS 1.3).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM file with the private key of --tls-cert; must be owned by the
    /// user the node runs as and private to it (mode 600).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// PEM file with the CA certificates that must sign client
    /// certificates: clients without one are refused (mutual TLS). Needs
    /// --tls-cert and --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,

    /// A JSON file with the spawn policy every remote spawn passes and the
    /// named profiles a spawn may ask for, in the format of `procward serve
    /// --config` (docs/security.md). Without it every spawn is allowed.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,

    /// Seconds a connection has, from accept to authentication (the TLS
    /// handshake included), before it is closed.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_seconds)]
    handshake_timeout: Duration,

    /// Connections not authenticated yet, in all; a connection past this
    /// closes the oldest pending one of the busiest address.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    max_pending_handshakes: u32,

    /// Connections not authenticated yet from one IP address; a connection
    /// past this closes that address's oldest pending one.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    max_pending_per_address: u32,

    /// The cgroup v2 directory under which the node makes its own cgroup,
    /// one per spawned tree (docs/security.md). Without it the node uses
    /// its own cgroup when it can write there, and process groups otherwise
    /// (logged at start). When given, a node that cannot make its cgroup
    /// there does not start.
    #[arg(long, value_name = "PATH")]
    cgroup_root: Option<PathBuf>,
}

impl NodeArgs {
    /// The node's options; loading `--config` is the one step that can
    /// fail, with a message naming the file.
    fn into_options(self) -> Result<NodeOptions, String> {
        // A node evicts at the cap (`NodeOptions::new`'s default too).
        let base = RegistryConfig::default().cap_policy(procward::CapPolicy::Evict);
        let registry = match &self.config {
            Some(path) => ServeConfig::load(path)?.apply(base),
            None => base,
        };
        let registry = match &self.cgroup_root {
            Some(root) => registry
                .cgroup(procward::CgroupMode::Required)
                .cgroup_root(root),
            None => registry,
        };
        let mut options =
            NodeOptions::new(self.listen, self.name, self.cookie_file).registry(registry);
        options.tls_cert = self.tls_cert;
        options.tls_key = self.tls_key;
        options.tls_client_ca = self.tls_client_ca;
        options.handshake_timeout = self.handshake_timeout;
        options.max_pending_handshakes = self.max_pending_handshakes;
        options.max_pending_per_address = self.max_pending_per_address;
        Ok(options)
    }
}

/// A positive number of seconds, fractions allowed (`5`, `0.5`).
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if seconds.is_nan() || seconds <= 0.0 {
        return Err("the handshake timeout must be more than 0 seconds".to_owned());
    }
    Duration::try_from_secs_f64(seconds).map_err(|err| format!("`{text}`: {err}"))
}

/// Runs `procward node` until SIGTERM or SIGINT; errors go to stderr.
pub(crate) fn main(args: NodeArgs) -> ExitCode {
    let options = match args.into_options() {
        Ok(options) => options,
        Err(err) => {
            eprintln!("procward: {err}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("procward: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let ran = runtime.block_on(async {
        let mut terminate = signal(SignalKind::terminate())
            .map_err(|err| format!("cannot watch SIGTERM: {err}"))?;
        let mut interrupt =
            signal(SignalKind::interrupt()).map_err(|err| format!("cannot watch SIGINT: {err}"))?;
        let stop = async move {
            let name = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "node shutting down");
        };
        run_node(options, stop).await.map_err(|err| err.message)
    });
    runtime.shutdown_timeout(RUNTIME_STOP_WAIT);
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            eprintln!("procward: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_timeouts_are_positive_seconds() {
        assert_eq!(parse_seconds("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        for bad in ["0", "-1", "NaN", "inf", "soon", ""] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
