//! Remote against local, on loopback: poll latency, spawn rate and
//! subscription throughput of a `procward node` reached through a
//! `ClusterClient`, beside the same work on an in-process `Registry`. Run
//! with
//! `cargo bench --features cluster --bench cluster`.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use procward::cluster::{ClientOptions, ClusterClient, Placement};
use procward::{KillRequest, OutputEvent, Registry, RegistryConfig, SpawnRequest, Stdin};

const POLLS: usize = 2000;
const SPAWNS: usize = 200;
/// What the subscribed child writes: as fast as it can, never slowed.
const FLOOD_BYTES: u64 = 256 << 20;
/// Starts writing once told (after the subscription is in place).
const FLOOD: &str = "read go; head -c 268435456 /dev/zero";

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
            OutputEvent::Exit(_) => {}
        }
    }

    fn row(&self, elapsed: Duration) -> String {
        format!(
            "{:.0} MiB/s, {:.0}% delivered",
            self.delivered as f64 / elapsed.as_secs_f64() / f64::from(1 << 20),
            100.0 * self.delivered as f64 / (self.delivered + self.missed).max(1) as f64
        )
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() * 99 / 100]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("procward-bench-cluster-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let cookie_file = dir.join("cookie");
    fs::write(&cookie_file, "bench-cookie")?;
    fs::set_permissions(&cookie_file, fs::Permissions::from_mode(0o600))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut node = Command::new(env!("CARGO_BIN_EXE_procward"))
        .args([
            "node",
            "--listen",
            &addr,
            "--name",
            "bench",
            "--cookie-file",
        ])
        .arg(&cookie_file)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = node.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;

    let client = ClusterClient::start(ClientOptions::new("bench-cookie")).await?;
    client.connect(addr).await?;
    let local = Registry::start(RegistryConfig::default().max_handles(SPAWNS + 16)).await?;

    // Poll latency: one sleeping process, polled again and again.
    let sleeper = local.spawn(SpawnRequest::argv(["sleep", "60"])).await?;
    let mut samples = Vec::with_capacity(POLLS);
    for _ in 0..POLLS {
        let start = Instant::now();
        local.poll(sleeper.handle_id).await?;
        samples.push(start.elapsed());
    }
    let (local_med, local_p99) = (median(samples.clone()), p99(samples));
    let remote_sleeper = client
        .spawn(
            SpawnRequest::argv(["sleep", "60"]),
            Placement::Node("bench".into()),
        )
        .await?;
    let mut samples = Vec::with_capacity(POLLS);
    for _ in 0..POLLS {
        let start = Instant::now();
        client.poll(&remote_sleeper.handle).await?;
        samples.push(start.elapsed());
    }
    let (remote_med, remote_p99) = (median(samples.clone()), p99(samples));
    local
        .kill(sleeper.handle_id, KillRequest::default())
        .await?;
    client
        .kill(&remote_sleeper.handle, KillRequest::default())
        .await?;

    // Spawn rate: `true`, one after the other, each waited and released.
    let start = Instant::now();
    for _ in 0..SPAWNS {
        let s = local.spawn(SpawnRequest::argv(["true"])).await?;
        local.wait(s.handle_id, None).await?;
        local.release(s.handle_id).await?;
    }
    let local_rate = SPAWNS as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..SPAWNS {
        let s = client
            .spawn(
                SpawnRequest::argv(["true"]),
                Placement::Node("bench".into()),
            )
            .await?;
        client.wait(&s.handle, None).await?;
        client.release(&s.handle).await?;
    }
    let remote_rate = SPAWNS as f64 / start.elapsed().as_secs_f64();

    // Subscription throughput: a subscriber pulling as fast as it can
    // while the child writes FLOOD_BYTES.
    let flood = local
        .spawn(SpawnRequest::shell(FLOOD).stdin(Stdin::Pipe))
        .await?;
    let mut sub = local.subscribe(flood.handle_id).await?;
    local.write(flood.handle_id, "go\n").await?;
    let (start, mut local_seen) = (Instant::now(), Seen::default());
    while let Some(event) = sub.recv().await {
        local_seen.add(&event);
    }
    let local_sub = local_seen.row(start.elapsed());
    assert_eq!(local_seen.delivered + local_seen.missed, FLOOD_BYTES);
    local.release(flood.handle_id).await?;
    let flood = client
        .spawn(
            SpawnRequest::shell(FLOOD).stdin(Stdin::Pipe),
            Placement::Node("bench".into()),
        )
        .await?;
    let mut sub = client.subscribe(&flood.handle).await?;
    client.write(&flood.handle, "go\n").await?;
    let (start, mut remote_seen) = (Instant::now(), Seen::default());
    while let Some(event) = sub.recv().await? {
        remote_seen.add(&event);
    }
    let remote_sub = remote_seen.row(start.elapsed());
    assert_eq!(remote_seen.delivered + remote_seen.missed, FLOOD_BYTES);
    client.release(&flood.handle).await?;

    println!("| figure | local | remote (loopback) |");
    println!("|---|---|---|");
    println!("| poll latency, median | {local_med:?} | {remote_med:?} |");
    println!("| poll latency, p99 | {local_p99:?} | {remote_p99:?} |");
    println!("| spawn+wait+release of `true`, per second | {local_rate:.0} | {remote_rate:.0} |");
    println!("| subscription to a 256 MiB flood | {local_sub} | {remote_sub} |");

    client.shutdown().await?;
    local.shutdown().await?;
    let _ = Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status();
    let _ = node.wait();
    let _ = fs::remove_dir_all(&dir);
    Ok(())
}
