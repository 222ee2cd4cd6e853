//! `usage.max_rss_kib` never reports the host's memory: `/bin/true`
//! spawned from a host holding 200 MB reports at most 8 MiB, or nothing
//! (null) where no cgroup memory controller counted the tree. In both
//! containment modes.

use procward::{CgroupMode, Containment, Registry, RegistryConfig, SpawnRequest};

const HOST_BYTES: usize = 200 << 20;
const CHILD_CEILING_KIB: u64 = 8 * 1024;

async fn true_usage(mode: CgroupMode) -> Option<(Containment, Option<u64>)> {
    let registry = match Registry::start(RegistryConfig::default().cgroup(mode)).await {
        Ok(registry) => registry,
        Err(err) => {
            println!("skipped {mode:?}: {err}");
            return None;
        }
    };
    let spawned = registry
        .spawn(SpawnRequest::argv(["/bin/true"]))
        .await
        .expect("spawn /bin/true");
    let done = registry
        .wait(spawned.handle_id, None)
        .await
        .expect("wait for /bin/true");
    registry.shutdown().await.expect("shutdown");
    let usage = done.snapshot.usage.expect("usage once terminal");
    Some((done.snapshot.containment, usage.max_rss_kib))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_child_of_a_large_host_never_reports_the_hosts_memory() {
    // Touch every page, so the host's resident set really is 200 MB.
    let ballast = vec![1u8; HOST_BYTES];
    let rss: u64 = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(rss > 200 * 1024, "the host holds {rss} KiB");
    for mode in [CgroupMode::Off, CgroupMode::Required] {
        let Some((containment, kib)) = true_usage(mode).await else {
            continue;
        };
        println!("{containment:?}: max_rss_kib {kib:?}");
        assert!(
            kib.is_none_or(|kib| kib <= CHILD_CEILING_KIB),
            "{containment:?}: /bin/true reported {kib:?} KiB"
        );
    }
    drop(std::hint::black_box(ballast));
}
