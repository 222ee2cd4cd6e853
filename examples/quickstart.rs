//! The quickstart: spawn, poll, wait and kill real processes, and print
//! what happened.
//!
//! Run with `cargo run --example quickstart`.

use std::time::Duration;

use procward::{KillRequest, Registry, RegistryConfig, SpawnRequest};
use time::format_description::well_known::Rfc3339;

#[tokio::main]
async fn main() -> Result<(), procward::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "procward=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    // Orphan reaping: grandchildren orphaned inside a killed tree are handed
    // to us and reaped, so nothing is left even where pid 1 does not reap.
    let registry = Registry::start(RegistryConfig::default().reap_orphans(true)).await?;

    // 1. A short command: spawn returns at once, wait gives the result.
    let hello = registry.spawn(SpawnRequest::argv(["uname", "-sr"])).await?;
    println!(
        "spawned  {} (pid {}) `{}`",
        hello.handle_id, hello.pid, hello.command
    );
    let done = registry.wait(hello.handle_id, None).await?;
    println!(
        "finished {} status={} exit_code={:?} stdout={:?}",
        hello.handle_id,
        done.snapshot.status,
        done.snapshot.exit_code,
        done.snapshot.stdout.text().trim_end()
    );

    // 2. A process tree that prints while it runs: poll shows output so far.
    let ticker = registry
        .spawn(SpawnRequest::shell(
            "for i in 1 2 3; do echo tick $i; sleep 0.2; done; sleep 30 & wait",
        ))
        .await?;
    println!("spawned  {} `{}`", ticker.handle_id, ticker.command);
    let waited = registry
        .wait(ticker.handle_id, Some(Duration::from_millis(700)))
        .await?;
    println!(
        "wait timed out={} running={} output so far: {:?}",
        waited.timed_out,
        waited.snapshot.running(),
        waited.snapshot.stdout.text()
    );

    // 3. Kill the whole tree (sh and its background sleep) with SIGTERM,
    //    escalating to SIGKILL after a grace period.
    let killed = registry
        .kill(
            ticker.handle_id,
            KillRequest::terminate(Duration::from_millis(500)),
        )
        .await?;
    println!(
        "killed   {} status={} signal={:?} ended_at={:?}",
        ticker.handle_id,
        killed.status,
        killed.signal,
        killed.ended_at.and_then(|t| t.format(&Rfc3339).ok())
    );

    // 4. A spawn-time timeout ends a process that runs too long.
    let slow = registry
        .spawn(SpawnRequest::argv(["sleep", "30"]).timeout(Duration::from_millis(300)))
        .await?;
    let slow_done = registry.wait(slow.handle_id, None).await?;
    println!(
        "timeout  {} status={} signal={:?}",
        slow.handle_id, slow_done.snapshot.status, slow_done.snapshot.signal
    );

    // 5. A missing program is a typed error, not a panic.
    match registry
        .spawn(SpawnRequest::argv(["/no/such/program"]))
        .await
    {
        Err(err) => println!("error    {err}"),
        Ok(snap) => println!("unexpectedly started {}", snap.handle_id),
    }

    for summary in registry.list().await? {
        println!(
            "listed   {} {:<9} {}",
            summary.handle_id, summary.status, summary.command
        );
    }
    println!(
        "released {}: {}",
        hello.handle_id,
        registry.release(hello.handle_id).await?
    );

    registry.shutdown().await?;
    println!("registry stopped; every child killed and reaped");
    Ok(())
}
