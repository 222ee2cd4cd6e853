//! The node's guard: a small `sh` process that kills the node's process
//! groups if the node itself dies without cleaning up (SIGKILL, a crash).
//!
//! The node tells the guard, on its stdin, every group it starts (`+pgid`)
//! and, every second, the full set still running (`=pgid pgid ...`). When
//! the guard's stdin reaches end of file without a final `exit` line (the
//! node died: the kernel closed the pipe), it SIGKILLs every group it knows
//! and exits. On a clean shutdown the node has already killed and reaped
//! everything, and sends `exit`.
//!
//! # Caveats
//!
//! A group that ended after the last `=` line but before the node died is
//! still in the guard's set; if the OS gave its id to a new process group
//! in that second, the guard would signal that group. The window is at
//! most one second long and needs a pid reused as a group leader.

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use tokio::sync::mpsc;

use super::error::{RemoteError, RemoteErrorKind};
use crate::messages::{ListFilter, Status};
use crate::registry::Registry;

/// How often the node sends the guard the full set of running groups.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

const SCRIPT: &str = r#"
groups=""
while IFS= read -r line; do
  case "$line" in
    exit) exit 0 ;;
    +*) groups="$groups ${line#+}" ;;
    =*) groups="${line#=}" ;;
  esac
done
for g in $groups; do kill -KILL "-$g" 2>/dev/null; done
exit 0
"#;

/// The running guard process.
#[derive(Debug)]
pub(crate) struct Guard {
    child: Child,
    tx: mpsc::UnboundedSender<String>,
    writer: tokio::task::JoinHandle<Option<ChildStdin>>,
}

impl Guard {
    /// Starts the guard `sh` process.
    pub(crate) fn start() -> Result<Guard, RemoteError> {
        let mut child = Command::new(crate::messages::SHELL)
            .args(["-c", SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| {
                RemoteError::new(
                    RemoteErrorKind::Internal,
                    format!("cannot start the node's guard process: {err}"),
                )
            })?;
        let stdin = child.stdin.take().ok_or_else(|| {
            RemoteError::new(RemoteErrorKind::Internal, "the guard has no stdin pipe")
        })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::task::spawn_blocking(move || write_lines(stdin, rx));
        Ok(Guard { child, tx, writer })
    }

    /// A sender for `+pgid` notes (one per spawned process group).
    pub(crate) fn notes(&self) -> mpsc::UnboundedSender<String> {
        self.tx.clone()
    }

    /// Sends the guard the running groups of `registry` every second.
    pub(crate) fn reconcile(&self, registry: Registry) -> tokio::task::JoinHandle<()> {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let running = ListFilter {
                owner: None,
                status: Some(Status::Running),
            };
            loop {
                tokio::time::sleep(RECONCILE_EVERY).await;
                let Ok(handles) = registry.list_where(running.clone()).await else {
                    continue;
                };
                let groups: Vec<String> = handles.iter().map(|h| h.pid.to_string()).collect();
                if tx.send(format!("={}", groups.join(" "))).is_err() {
                    return;
                }
            }
        })
    }

    /// Tells the guard that everything is already cleaned up, and reaps it.
    pub(crate) async fn dismiss(mut self) {
        let _ = self.tx.send("exit".to_owned());
        drop(self.tx);
        let _ = self.writer.await;
        let _ = tokio::task::spawn_blocking(move || self.child.wait()).await;
    }
}

fn write_lines(
    mut stdin: ChildStdin,
    mut rx: mpsc::UnboundedReceiver<String>,
) -> Option<ChildStdin> {
    while let Some(line) = rx.blocking_recv() {
        if writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .is_err()
        {
            return None;
        }
        // Other senders may still be alive; the guard is done anyway.
        if line == "exit" {
            break;
        }
    }
    Some(stdin)
}
