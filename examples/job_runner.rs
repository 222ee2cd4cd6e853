//! procward embedded in a ractor application: a supervisor that links the
//! registry, a job runner that spawns each job with a timeout and
//! subscribes a log sink to its output at spawn, and cancellation by
//! owner. The pieces are in `examples/job_runner/pieces.rs`.
//!
//! Run with `cargo run --example job_runner` (about a second).

#[path = "job_runner/pieces.rs"]
mod pieces;

use std::time::Duration;

use pieces::{JobSpec, RunnerMsg};
use procward::{RegistryConfig, Status};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "procward=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    // The library's default cap policy queues spawns past the cap (64
    // handles) instead of killing running jobs; 80 jobs fit either way.
    let (supervisor, runner) = pieces::start(RegistryConfig::default()).await?;
    let job = |command: &str, owner: &str, timeout_ms: u64| JobSpec {
        command: command.to_owned(),
        owner: owner.to_owned(),
        timeout: Duration::from_millis(timeout_ms),
    };

    // 1. Eighty quick jobs at once; every byte arrives at the sink.
    let mut submitted = Vec::new();
    for i in 0..80 {
        let spec = job(
            &format!("seq 1 {}; echo job-{i} >&2", 100 * i),
            "batch",
            30_000,
        );
        submitted.push(ractor::call!(runner, RunnerMsg::Submit, spec)??);
    }
    let mut bytes = 0;
    for id in &submitted {
        let report = ractor::call!(runner, RunnerMsg::Wait, *id)??;
        assert_eq!(report.stdout.len() as u64, report.total_stdout);
        assert_eq!(report.stderr.len() as u64, report.total_stderr);
        bytes += report.stdout.len() + report.stderr.len();
    }
    println!(
        "batch: {} jobs, {bytes} bytes, every one received",
        submitted.len()
    );

    // 2. A job that runs past its timeout is killed: `timed_out`.
    let slow = ractor::call!(runner, RunnerMsg::Submit, job("sleep 30", "slow", 200))??;
    let report = ractor::call!(runner, RunnerMsg::Wait, slow)??;
    assert_eq!(report.status, Status::TimedOut);
    println!(
        "slow:  {} after {:?}",
        report.status,
        report.elapsed.unwrap_or_default()
    );

    // 3. Cancel an owner: its running jobs are killed.
    let mut session = Vec::new();
    for _ in 0..3 {
        let spec = job("echo started; sleep 30", "session-7", 30_000);
        session.push(ractor::call!(runner, RunnerMsg::Submit, spec)??);
    }
    let killed = ractor::call!(runner, RunnerMsg::CancelOwner, "session-7".to_owned())??;
    for id in &session {
        let report = ractor::call!(runner, RunnerMsg::Wait, *id)??;
        assert_eq!(report.status, Status::Killed);
    }
    println!("cancel: {killed} jobs of session-7 killed");

    // A report is plain data, errors included: it serializes as is.
    let outcome = ractor::call!(runner, RunnerMsg::Wait, 0)?;
    let line = serde_json::to_string(&outcome)?;
    println!("unknown job: {line}");

    // Stopping the supervisor stops the registry in order: every process
    // killed and reaped before it returns.
    supervisor.stop_and_wait(None, None).await?;
    Ok(())
}
