//! A child that writes 1 GiB is captured within the default cap, and this
//! process's peak memory grows by far less than what the child wrote; a
//! handle that printed a burst and went quiet holds no read block.
//!
//! The tests take turns ([`SERIAL`]), so nothing else moves the peak the
//! first one measures, nor the allocations the second counts.

mod capture_memory {
    mod quiet_handle;
}

/// Held by each test for its whole run.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

use procward::{DEFAULT_OUTPUT_CAP, Registry, RegistryConfig, SpawnRequest, Status};

/// Peak resident memory of this process so far, in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmHWM line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_of_output_costs_less_than_64_mib() {
    let _turn = SERIAL.lock().await;
    const GIB: u64 = 1 << 30;
    let registry = Registry::start(RegistryConfig::default().reap_orphans(true))
        .await
        .unwrap();
    let before = peak_rss_kib();

    let spawned = registry
        .spawn(SpawnRequest::argv([
            "head",
            "-c",
            "1073741824",
            "/dev/zero",
        ]))
        .await
        .unwrap();
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .unwrap()
        .snapshot;

    let growth_mib = (peak_rss_kib() - before) / 1024;
    assert_eq!(done.status, Status::Exited);
    assert_eq!(done.exit_code, Some(0));
    assert!(done.stdout.truncated);
    assert_eq!(done.stdout.total_bytes, GIB);
    assert_eq!(done.stdout.bytes.len(), DEFAULT_OUTPUT_CAP);
    assert!(done.stdout.bytes.iter().all(|&b| b == 0));
    assert!(
        growth_mib < 64,
        "peak RSS grew by {growth_mib} MiB while capturing 1 GiB"
    );
    eprintln!("peak RSS growth while capturing 1 GiB: {growth_mib} MiB");
    registry.shutdown().await.unwrap();
}
