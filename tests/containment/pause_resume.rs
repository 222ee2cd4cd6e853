//! Pause stops the whole process tree (it stays `running`, marked paused);
//! resume lets it go on. Process-group containment (SIGSTOP/SIGCONT); the
//! cgroup freezer is tested in tests/containment/cgroup.rs.

use procward::{
    CgroupMode, KillRequest, OutputEvent, Registry, RegistryConfig, SpawnRequest, Status,
};

/// Waits (polling `/proc`, no event exists for it) until `pid`'s state
/// is stopped or not, as asked; panics after a generous deadline.
async fn wait_state(pid: u32, stopped: bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while (state(pid) == Some('T')) != stopped {
        assert!(
            std::time::Instant::now() < deadline,
            "pid {pid} never became {} (its state: {:?})",
            if stopped { "stopped" } else { "running" },
            state(pid)
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The state letter of `/proc/<pid>/stat` (`T` = stopped).
fn state(pid: u32) -> Option<char> {
    Some(crate::support::stat(pid)?.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_the_tree_and_resume_lets_it_go_on() {
    let registry = Registry::start(
        RegistryConfig::default()
            .cgroup(CgroupMode::Off)
            .reap_orphans(true),
    )
    .await
    .unwrap();
    // A counter that prints forever, in a child of the shell.
    let spawned = registry
        .spawn(SpawnRequest::shell(
            "sh -c 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.01; done' & echo pid $!; wait",
        ))
        .await
        .unwrap();
    let mut feed = registry.subscribe(spawned.handle_id).await.unwrap();
    // The counter may print before the shell prints its pid: look for the
    // `pid N` line among the first lines.
    // What was printed before the subscription, then the live chunks.
    let earlier = registry
        .read(
            spawned.handle_id,
            procward::ReadRequest::new(procward::OutputStream::Stdout)
                .max_bytes(feed.subscribed.stdout_offset as usize),
        )
        .await
        .expect("read what came before");
    let mut text = String::from_utf8_lossy(&earlier.bytes).into_owned();
    let counter: u32 = loop {
        let pid = text
            .lines()
            .filter(|_| text.ends_with('\n'))
            .find_map(|line| line.strip_prefix("pid "))
            .and_then(|pid| pid.trim().parse().ok());
        if let Some(pid) = pid {
            break pid;
        }
        match feed.recv().await {
            Some(OutputEvent::Chunk { bytes, .. }) => {
                text.push_str(&String::from_utf8_lossy(&bytes))
            }
            other => panic!("unexpected {other:?}"),
        }
    };

    let paused = registry.pause(spawned.handle_id).await.unwrap();
    assert_eq!(paused.status, Status::Running);
    assert!(paused.paused);
    // Every member of the tree stops (SIGSTOP takes effect as each process
    // is next scheduled): the counter cannot advance.
    for pid in [spawned.pid, counter] {
        eprintln!("waiting for pid {pid} to stop (leader {})", spawned.pid);
        wait_state(pid, true).await;
    }
    assert!(registry.poll(spawned.handle_id).await.unwrap().paused);

    let resumed = registry.resume(spawned.handle_id).await.unwrap();
    assert!(!resumed.paused);
    // Drain what was printed before the pause, then see it advance again.
    let before = registry
        .poll(spawned.handle_id)
        .await
        .unwrap()
        .stdout
        .total_bytes;
    loop {
        match feed.recv().await {
            Some(OutputEvent::Chunk { offset, bytes, .. })
                if offset + bytes.len() as u64 > before =>
            {
                break;
            }
            Some(_) => continue,
            None => panic!("the feed ended"),
        }
    }
    wait_state(counter, false).await;

    // A paused tree can be killed, gently too: it is continued first.
    registry.pause(spawned.handle_id).await.unwrap();
    let killed = registry
        .kill(
            spawned.handle_id,
            KillRequest::terminate(std::time::Duration::from_secs(5)),
        )
        .await
        .unwrap();
    assert_eq!(killed.status, Status::Killed);
    assert!(!killed.paused);
    // Pause and resume of a finished handle are no-ops.
    assert_eq!(
        registry.pause(spawned.handle_id).await.unwrap().status,
        Status::Killed
    );
    registry.shutdown().await.unwrap();
}
