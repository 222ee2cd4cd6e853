//! Remote against local, on loopback: poll latency, spawn rate and
//! subscription throughput of a `procward node` reached through a
//! `ClusterClient`, in plain TCP and in TLS, beside the same work on an
//! in-process `Registry`. Run with
//! `cargo bench --features cluster --bench cluster`.

#[path = "../tests/cluster_support/certs.rs"]
mod certs;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use procward::cluster::{ClientOptions, ClientTls, ClusterClient, Placement, RemoteHandle};
use procward::{KillRequest, OutputEvent, Registry, RegistryConfig, SpawnRequest, Stdin};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const POLLS: usize = 2000;
const SPAWNS: usize = 200;
/// What the subscribed child writes: as fast as it can, never slowed.
const FLOOD_BYTES: u64 = 256 << 20;
/// Starts writing once told (after the subscription is in place).
const FLOOD: &str = "read go; head -c 268435456 /dev/zero";
const COOKIE: &str = "bench-cookie";

/// What a subscriber saw: bytes delivered, bytes counted as missed.
#[derive(Default)]
struct Seen {
    delivered: u64,
    missed: u64,
}

impl Seen {
    fn add(&mut self, event: &OutputEvent) {
        match event {
            OutputEvent::Chunk { bytes, .. } => self.delivered += bytes.len() as u64,
            OutputEvent::Missed { bytes, .. } => self.missed += bytes,
            OutputEvent::Exit { .. } => {}
        }
    }

    fn cell(&self, elapsed: Duration) -> Res<String> {
        if self.delivered + self.missed != FLOOD_BYTES {
            return Err("the subscriber's bytes do not add up to the stream".into());
        }
        Ok(format!(
            "{:.0} MiB/s, {:.0}% delivered",
            self.delivered as f64 / elapsed.as_secs_f64() / f64::from(1 << 20),
            100.0 * self.delivered as f64 / FLOOD_BYTES as f64
        ))
    }
}

/// One column of the table.
struct Figures {
    poll_median: Duration,
    poll_p99: Duration,
    spawns_per_second: f64,
    subscription: String,
}

fn percentile(mut samples: Vec<Duration>, per_cent: usize) -> Duration {
    samples.sort();
    samples[(samples.len() * per_cent / 100).min(samples.len() - 1)]
}

/// What a column measures, whatever the registry is.
trait Target {
    async fn spawn(&self, request: SpawnRequest) -> Res<RemoteHandle>;
    async fn poll(&self, handle: &RemoteHandle) -> Res<()>;
    async fn wait(&self, handle: &RemoteHandle) -> Res<()>;
    async fn kill(&self, handle: &RemoteHandle) -> Res<()>;
    async fn release(&self, handle: &RemoteHandle) -> Res<()>;
    async fn write(&self, handle: &RemoteHandle, bytes: &'static str) -> Res<()>;
    /// Subscribes, writes `go`, and counts the events until the exit.
    async fn follow(&self, handle: &RemoteHandle) -> Res<(Seen, Duration)>;
}

impl Target for Registry {
    async fn spawn(&self, request: SpawnRequest) -> Res<RemoteHandle> {
        let id = Registry::spawn(self, request).await?.handle_id;
        Ok(RemoteHandle {
            node: "local".into(),
            id,
        })
    }
    async fn poll(&self, handle: &RemoteHandle) -> Res<()> {
        Registry::poll(self, handle.id).await?;
        Ok(())
    }
    async fn wait(&self, handle: &RemoteHandle) -> Res<()> {
        Registry::wait(self, handle.id, None).await?;
        Ok(())
    }
    async fn kill(&self, handle: &RemoteHandle) -> Res<()> {
        Registry::kill(self, handle.id, KillRequest::default()).await?;
        Ok(())
    }
    async fn release(&self, handle: &RemoteHandle) -> Res<()> {
        Registry::release(self, handle.id).await?;
        Ok(())
    }
    async fn write(&self, handle: &RemoteHandle, bytes: &'static str) -> Res<()> {
        Ok(Registry::write(self, handle.id, bytes).await?)
    }
    async fn follow(&self, handle: &RemoteHandle) -> Res<(Seen, Duration)> {
        let mut sub = self.subscribe(handle.id).await?;
        Target::write(self, handle, "go\n").await?;
        let (start, mut seen) = (Instant::now(), Seen::default());
        while let Some(event) = sub.recv().await {
            seen.add(&event);
        }
        Ok((seen, start.elapsed()))
    }
}

impl Target for ClusterClient {
    async fn spawn(&self, request: SpawnRequest) -> Res<RemoteHandle> {
        Ok(ClusterClient::spawn(self, request, Placement::LeastLoaded)
            .await?
            .handle)
    }
    async fn poll(&self, handle: &RemoteHandle) -> Res<()> {
        ClusterClient::poll(self, handle).await?;
        Ok(())
    }
    async fn wait(&self, handle: &RemoteHandle) -> Res<()> {
        ClusterClient::wait(self, handle, None).await?;
        Ok(())
    }
    async fn kill(&self, handle: &RemoteHandle) -> Res<()> {
        ClusterClient::kill(self, handle, KillRequest::default()).await?;
        Ok(())
    }
    async fn release(&self, handle: &RemoteHandle) -> Res<()> {
        ClusterClient::release(self, handle).await?;
        Ok(())
    }
    async fn write(&self, handle: &RemoteHandle, bytes: &'static str) -> Res<()> {
        Ok(ClusterClient::write(self, handle, bytes).await?)
    }
    async fn follow(&self, handle: &RemoteHandle) -> Res<(Seen, Duration)> {
        let mut sub = self.subscribe(handle).await?;
        Target::write(self, handle, "go\n").await?;
        let (start, mut seen) = (Instant::now(), Seen::default());
        while let Some(event) = sub.recv().await? {
            seen.add(&event);
        }
        Ok((seen, start.elapsed()))
    }
}

async fn measure(target: &impl Target) -> Res<Figures> {
    // Poll latency: one sleeping process, polled again and again.
    let sleeper = target.spawn(SpawnRequest::argv(["sleep", "60"])).await?;
    let mut samples = Vec::with_capacity(POLLS);
    for _ in 0..POLLS {
        let start = Instant::now();
        target.poll(&sleeper).await?;
        samples.push(start.elapsed());
    }
    target.kill(&sleeper).await?;
    target.release(&sleeper).await?;

    // Spawn rate: `true`, one after the other, each waited and released.
    let start = Instant::now();
    for _ in 0..SPAWNS {
        let handle = target.spawn(SpawnRequest::argv(["true"])).await?;
        target.wait(&handle).await?;
        target.release(&handle).await?;
    }
    let spawns_per_second = SPAWNS as f64 / start.elapsed().as_secs_f64();

    // Subscription throughput: a subscriber pulling as fast as it can
    // while the child writes FLOOD_BYTES.
    let flood = target
        .spawn(SpawnRequest::shell(FLOOD).stdin(Stdin::Pipe))
        .await?;
    let (seen, elapsed) = target.follow(&flood).await?;
    target.release(&flood).await?;

    Ok(Figures {
        poll_median: percentile(samples.clone(), 50),
        poll_p99: percentile(samples, 99),
        spawns_per_second,
        subscription: seen.cell(elapsed)?,
    })
}

/// A `procward node` on a free loopback port; answers it and its address
/// once it listens.
fn start_node(name: &str, cookie: &Path, extra: &[&Path]) -> Res<(Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut command = Command::new(env!("CARGO_BIN_EXE_procward"));
    command
        .args(["node", "--listen", &addr, "--name", name, "--cookie-file"])
        .arg(cookie)
        .stdout(Stdio::piped());
    if let [cert, key] = extra {
        command
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key);
    }
    let mut node = command.spawn()?;
    let stdout = node.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    if !line.contains("listening") {
        let _ = node.kill();
        let _ = node.wait();
        return Err(format!("node {name} did not start").into());
    }
    Ok((node, addr))
}

fn stop_node(mut node: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status();
    let _ = node.wait();
}

async fn remote(addr: String, tls: Option<ClientTls>) -> Res<Figures> {
    let mut options = ClientOptions::new(COOKIE);
    if let Some(tls) = tls {
        options = options.tls(tls);
    }
    let client = ClusterClient::start(options).await?;
    client.connect(addr).await?;
    let figures = measure(&client).await;
    client.shutdown().await?;
    figures
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let dir = std::env::temp_dir().join(format!("procward-bench-cluster-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let cookie = dir.join("cookie");
    fs::write(&cookie, COOKIE)?;
    fs::set_permissions(&cookie, fs::Permissions::from_mode(0o600))?;
    let ca = certs::Ca::new("bench-ca");
    let ca_file = ca.write(&dir, "ca");
    let (cert, key) = ca.node(&["127.0.0.1"]).write(&dir, "node");

    let local = Registry::start(RegistryConfig::default().max_handles(SPAWNS + 16)).await?;
    let local_figures = measure(&local).await;
    local.shutdown().await?;

    let (plain_node, plain_addr) = start_node("plain", &cookie, &[])?;
    let plain = remote(plain_addr, None).await;
    stop_node(plain_node);

    let (tls_node, tls_addr) = start_node("tls", &cookie, &[&cert, &key])?;
    let tls = remote(tls_addr, Some(ClientTls::new(&ca_file)?)).await;
    stop_node(tls_node);
    let _ = fs::remove_dir_all(&dir);

    let columns = [local_figures?, plain?, tls?];
    println!("| figure | local | remote, plain TCP | remote, TLS |");
    println!("|---|---|---|---|");
    let row = |name: &str, cell: &dyn Fn(&Figures) -> String| {
        let cells: Vec<String> = columns.iter().map(cell).collect();
        println!("| {name} | {} |", cells.join(" | "));
    };
    row("poll latency, median", &|f| format!("{:?}", f.poll_median));
    row("poll latency, p99", &|f| format!("{:?}", f.poll_p99));
    row("spawn+wait+release of `true`, per second", &|f| {
        format!("{:.0}", f.spawns_per_second)
    });
    row("subscription to a 256 MiB flood", &|f| {
        f.subscription.clone()
    });
    Ok(())
}
