//! Every byte a child wrote before it exited is in its terminal snapshot,
//! however busy the host and however short the drain grace.

use std::time::Duration;

use futures::future::join_all;
use procward::{Registry, RegistryConfig, SpawnRequest, Status};

/// Children run at once; `PROCWARD_LOSS_CHILDREN` raises it (the 900-child
/// figure in docs/testing.md comes from that).
fn children() -> usize {
    std::env::var("PROCWARD_LOSS_CHILDREN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_short_children_keep_every_byte_with_a_tiny_drain_grace() {
    let n = children();
    // The server's defaults (orphan reaping, escapee hunting), and a drain
    // grace far shorter than a loaded runtime takes to read a pipe.
    let registry = Registry::start(
        RegistryConfig::default()
            .max_handles(n + 16)
            .drain_grace(Duration::from_millis(2))
            .reap_orphans(true)
            .kill_escapees(true),
    )
    .await
    .unwrap();
    let hogs: Vec<_> = (0..2).map(|_| tokio::spawn(hog())).collect();
    let runs = (0..n).map(|i| {
        let registry = registry.clone();
        async move {
            let line =
                format!("echo out-{i}-$$; echo err-{i}-$$ >&2; sleep 0.0$((RANDOM % 9)); exit 12");
            let snap = registry
                .spawn(SpawnRequest::argv(["bash", "-c", &line]))
                .await
                .unwrap();
            let done = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
            (i, snap.pid, done)
        }
    });
    let mut lost = Vec::new();
    for (i, pid, done) in join_all(runs).await {
        assert_eq!(done.status, Status::Exited, "{}", done.handle_id);
        assert_eq!(done.exit_code, Some(12), "{}", done.handle_id);
        if done.stdout.text() != format!("out-{i}-{pid}\n")
            || done.stderr.text() != format!("err-{i}-{pid}\n")
        {
            lost.push((
                i,
                done.stdout.text().into_owned(),
                done.stderr.text().into_owned(),
            ));
        }
    }
    for hog in hogs {
        hog.abort();
    }
    registry.shutdown().await.unwrap();
    assert!(
        lost.is_empty(),
        "{} of {n} children lost output: {lost:?}",
        lost.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_in_the_pipe_when_the_grace_passes_are_kept() {
    let registry = Registry::start(
        RegistryConfig::default()
            .drain_grace(Duration::from_millis(1))
            .reap_orphans(true),
    )
    .await
    .unwrap();
    // The leader grows its stdout pipe to 1 MiB, starts a sleep that holds
    // stdout open, writes 1 MiB into the pipe at once (it never blocks),
    // and exits: when the 1 ms grace passes, everything is in the pipe, and
    // the reader, which takes 16 reads of 64 KiB for it, has had little of
    // its turn yet. Two tasks that block the runtime's workers
    // for milliseconds at a time make the reader's turn come late, as on a
    // busy host.
    let hogs: Vec<_> = (0..2).map(|_| tokio::spawn(hog())).collect();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let snap = registry
            .spawn(SpawnRequest::shell("exec python3 -c \"$FILL\"").env("FILL", FILL))
            .await
            .unwrap();
        ids.push(snap);
    }
    let expected = format!("{}done\n", "x".repeat(PIPE - 5));
    for snap in ids {
        let done = registry.wait(snap.handle_id, None).await.unwrap().snapshot;
        assert_eq!(done.status, Status::Exited);
        assert_eq!(
            done.stdout.total_bytes,
            expected.len() as u64,
            "{}",
            snap.handle_id
        );
        assert!(
            done.stdout.text() == expected,
            "{} lost bytes",
            snap.handle_id
        );
        crate::support::wait_group_gone(snap.pid).await;
    }
    for hog in hogs {
        hog.abort();
    }
    registry.shutdown().await.unwrap();
}

/// The size the leader gives its stdout pipe: Linux's default
/// `pipe-max-size`, which an unprivileged process may ask for.
const PIPE: usize = 1 << 20;

/// Grows stdout's pipe to [`PIPE`] bytes, leaves a sleep holding it, fills
/// it without blocking and exits.
const FILL: &str = "import fcntl, os, subprocess\n\
                    fcntl.fcntl(1, 1031, 1 << 20)\n\
                    subprocess.Popen(['sleep', '30'])\n\
                    data = b'x' * ((1 << 20) - 5) + b'done\\n'\n\
                    while data:\n    data = data[os.write(1, data):]\n";

/// Blocks a runtime worker for 3 ms at a time, for ever.
async fn hog() {
    loop {
        std::thread::sleep(Duration::from_millis(3));
        tokio::task::yield_now().await;
    }
}
