//! The baseline: the same work done directly with `tokio::process`, as the
//! hand-rolled code procward replaces did it.

use std::process::Stdio;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// A command with stdin from `/dev/null` and both output streams piped,
/// killed if dropped (so a failing bench leaves nothing behind).
pub(crate) fn command(argv: &[&str]) -> Command {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Spawn, pipe both streams, read both to the end, wait: what
/// `wait_with_output` does. Returns the stdout length.
pub(crate) async fn run_to_end(argv: &[&str]) -> usize {
    let output = command(argv)
        .spawn()
        .expect("raw spawn")
        .wait_with_output()
        .await
        .expect("raw wait_with_output");
    output.stdout.len()
}

/// A running raw child whose two streams are read to the end by tasks of
/// their own, as a supervisor would.
pub(crate) struct Running {
    pub(crate) child: Child,
    readers: [JoinHandle<usize>; 2],
}

impl Running {
    pub(crate) fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd.spawn().expect("raw spawn");
        let mut stdout = child.stdout.take().expect("stdout piped");
        let mut stderr = child.stderr.take().expect("stderr piped");
        let readers = [
            tokio::spawn(async move {
                let mut buf = Vec::new();
                stdout.read_to_end(&mut buf).await.unwrap_or(0)
            }),
            tokio::spawn(async move {
                let mut buf = Vec::new();
                stderr.read_to_end(&mut buf).await.unwrap_or(0)
            }),
        ];
        Running { child, readers }
    }

    /// The pid, which is also the group id when spawned with
    /// `process_group(0)`.
    pub(crate) fn pid(&self) -> i32 {
        self.child.id().expect("unreaped child has a pid") as i32
    }

    /// Waits for the exit and for both streams to close: the moment a
    /// supervisor knows the process is over.
    pub(crate) async fn finish(mut self) {
        self.child.wait().await.expect("raw wait");
        for reader in self.readers {
            let _ = reader.await;
        }
    }

    /// Waits for the exit, or for `kill` to fire and then SIGKILLs the
    /// child; then [`finish`](Self::finish). A wait task per child, as a
    /// supervisor holding many keeps.
    pub(crate) async fn wait_or_kill(mut self, kill: tokio::sync::oneshot::Receiver<()>) {
        tokio::select! {
            _ = self.child.wait() => {}
            _ = kill => {
                let _ = self.child.start_kill();
            }
        }
        self.finish().await;
    }

    /// SIGKILL to the child alone, then [`finish`](Self::finish).
    pub(crate) async fn kill(mut self) {
        self.child.start_kill().expect("raw kill");
        self.finish().await;
    }

    /// SIGKILL to the child's process group, then [`finish`](Self::finish).
    pub(crate) async fn kill_group(self) {
        let pid = rustix::process::Pid::from_raw(self.pid()).expect("pid above 0");
        // The child is unreaped, so its group id is still its own.
        rustix::process::kill_process_group(pid, rustix::process::Signal::KILL)
            .expect("raw group kill");
        self.finish().await;
    }
}
