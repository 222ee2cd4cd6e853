//! Remote against local, on loopback: poll latency and spawn rate of a
//! `procward node` reached through a `ClusterClient`, beside the same work
//! on an in-process `Registry`. Run with
//! `cargo bench --features cluster --bench cluster`.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use procward::cluster::{ClientOptions, ClusterClient, Placement};
use procward::{KillRequest, Registry, RegistryConfig, SpawnRequest};

const POLLS: usize = 2000;
const SPAWNS: usize = 200;

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

    println!("| figure | local | remote (loopback) |");
    println!("|---|---|---|");
    println!("| poll latency, median | {local_med:?} | {remote_med:?} |");
    println!("| poll latency, p99 | {local_p99:?} | {remote_p99:?} |");
    println!("| spawn+wait+release of `true`, per second | {local_rate:.0} | {remote_rate:.0} |");

    client.shutdown().await?;
    local.shutdown().await?;
    let _ = Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status();
    let _ = node.wait();
    let _ = fs::remove_dir_all(&dir);
    Ok(())
}
