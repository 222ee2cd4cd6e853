//! Capture of 1 GiB with the default caps: throughput against a shell
//! pipeline into `cat`, and the peak RSS it costs.

use std::process::Stdio;
use std::time::Instant;

use procward::{DEFAULT_OUTPUT_CAP, Registry, RegistryConfig, SpawnRequest, Status};
use tokio::io::AsyncReadExt;

use crate::harness::{Row, Samples, Target, Unit};
use crate::replaced::ReplacedRegistry;
use crate::{Opts, procfs, raw};

const GIB: u64 = 1 << 30;

/// Bytes per second of a procward spawn + wait of `head -c 1073741824
/// /dev/zero`, and the growth of peak RSS over RSS before it.
async fn procward_once(registry: &Registry) -> (f64, f64) {
    procfs::reset_peak();
    let before = procfs::rss_bytes();
    let start = Instant::now();
    let spawned = registry
        .spawn(SpawnRequest::argv([
            "head",
            "-c",
            "1073741824",
            "/dev/zero",
        ]))
        .await
        .expect("spawn");
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .expect("wait")
        .snapshot;
    let elapsed = start.elapsed();
    let growth = procfs::peak_rss_bytes().saturating_sub(before);
    assert_eq!(done.status, Status::Exited);
    assert_eq!(done.stdout.total_bytes, GIB);
    assert_eq!(done.stdout.bytes.len(), DEFAULT_OUTPUT_CAP);
    registry.release(spawned.handle_id).await.expect("release");
    (GIB as f64 / elapsed.as_secs_f64(), growth as f64)
}

/// Bytes per second of the replaced registry's spawn + wait of the same
/// child (its wait ends with a poll, which decodes the whole output), and
/// its peak RSS growth.
async fn replaced_once(replaced: &ReplacedRegistry) -> (f64, f64) {
    procfs::reset_peak();
    let before = procfs::rss_bytes();
    let start = Instant::now();
    let id = replaced.spawn(&["head", "-c", "1073741824", "/dev/zero"]);
    let done = replaced
        .wait(id, std::time::Duration::from_secs(600))
        .await
        .expect("replaced registry wait");
    let elapsed = start.elapsed();
    let growth = procfs::peak_rss_bytes().saturating_sub(before);
    assert_eq!(done.stdout.len() as u64, GIB);
    drop(done);
    replaced.release(id);
    (GIB as f64 / elapsed.as_secs_f64(), growth as f64)
}

/// Bytes per second of `head -c 1G /dev/zero | cat >/dev/null`.
async fn pipeline_once() -> f64 {
    let start = Instant::now();
    let status = tokio::process::Command::new("sh")
        .args(["-c", "head -c 1G /dev/zero | cat >/dev/null"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .expect("pipeline");
    assert!(status.success());
    GIB as f64 / start.elapsed().as_secs_f64()
}

/// Bytes per second of raw tokio::process reading the same child's stdout
/// in 64 KiB reads and dropping them (no capture at all), on a runtime
/// task as procward's reader is.
async fn tokio_discard_once() -> f64 {
    tokio::spawn(async {
        let start = Instant::now();
        let mut running = raw::command(&["head", "-c", "1073741824", "/dev/zero"])
            .spawn()
            .expect("raw spawn");
        let mut stdout = running.stdout.take().expect("piped");
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = stdout.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        running.wait().await.expect("wait");
        assert_eq!(total, GIB);
        GIB as f64 / start.elapsed().as_secs_f64()
    })
    .await
    .expect("raw reader task")
}

pub(crate) async fn capture(opts: &Opts) -> Vec<Row> {
    let registry = Registry::start(RegistryConfig::default())
        .await
        .expect("registry start");
    let replaced = ReplacedRegistry::default();
    let (mut pw, mut growth, mut pipe, mut discard, mut old, mut old_growth) = (
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
    );
    for round in 0..opts.rounds(7) {
        for k in 0..4 {
            match (k + round) % 4 {
                0 => {
                    let (rate, grown) = procward_once(&registry).await;
                    pw.push(rate);
                    growth.push(grown);
                }
                1 => pipe.push(pipeline_once().await),
                2 => discard.push(tokio_discard_once().await),
                _ => {
                    let (rate, grown) = replaced_once(&replaced).await;
                    old.push(rate);
                    old_growth.push(grown);
                }
            }
        }
    }
    registry.shutdown().await.expect("registry shutdown");
    let figure = "capture 1 GiB, default caps";
    vec![
        Row::new(figure, Unit::BytesPerSec, pw.clone())
            .baseline("tokio::process, 64 KiB reads dropped", discard)
            .paired()
            .target(Target::Ratio(0.85), "≥ 0.85×"),
        Row::new(figure, Unit::BytesPerSec, pw.clone())
            .baseline("`head -c 1G /dev/zero | cat >/dev/null`", pipe)
            .paired(),
        Row::new(figure, Unit::BytesPerSec, pw)
            .baseline("replaced registry", old)
            .paired(),
        Row::new("capture 1 GiB: peak RSS growth", Unit::Bytes, growth)
            .baseline("replaced registry", old_growth)
            .target(Target::Absolute(64.0 * 1024.0 * 1024.0), "≤ 64 MiB"),
    ]
}
