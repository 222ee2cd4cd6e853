//! A descendant outside the group (`setsid`) that holds stdout writes on
//! through a SIGKILL of the group and past the leader's exit: every line
//! it writes before it closes the pipe is in the terminal snapshot, in
//! order (the exit does not close a pipe still held).

use procward::{CgroupMode, KillRequest, Registry, RegistryConfig, SpawnRequest, Status};

use crate::support;

/// Lines the escapee writes after its pid: about 480 KiB, seven times what
/// a pipe holds: it is still writing when the leader dies, and blocks on
/// the full pipe while nobody reads it.
const LINES: usize = 50_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_trees_escapee_is_read_through_the_kill_to_its_end() {
    // Process-group containment: under cgroup containment the kill ends
    // the escapee too. The drain waits for the escapee, which closes the
    // pipe as it ends.
    let config = RegistryConfig::default()
        .cgroup(CgroupMode::Off)
        .drain_grace(support::DEADLINE);
    let registry = Registry::start(config).await.unwrap();
    let script = format!(
        "setsid sh -c 'echo $$; i=0; while [ $i -lt {LINES} ]; do echo line$i; i=$((i+1)); done; echo end' & exec sleep 300"
    );
    let snap = registry.spawn(SpawnRequest::shell(script)).await.unwrap();
    let running = support::wait_for_stdout(&registry, snap.handle_id, "\n").await;
    let escapee: u32 = running
        .stdout
        .text()
        .lines()
        .next()
        .and_then(|line| line.parse().ok())
        .unwrap_or_else(|| panic!("no pid first: {running:?}"));

    let done = registry
        .kill(snap.handle_id, KillRequest::default())
        .await
        .unwrap();
    assert_eq!(done.status, Status::Killed);
    let mut expected = format!("{escapee}\n");
    for i in 0..LINES {
        expected.push_str(&format!("line{i}\n"));
    }
    expected.push_str("end\n");
    let text = done.stdout.text();
    assert!(
        text == expected,
        "{} bytes of {}; ends with {:?}",
        text.len(),
        expected.len(),
        &text[text.len().saturating_sub(40)..]
    );

    support::wait_dead(escapee).await;
    support::wait_group_gone(snap.pid).await;
    registry.shutdown().await.unwrap();
}
