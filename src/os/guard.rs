//! The registry's guard: a small `sh` process that kills the registry's
//! processes if the program hosting the registry dies without cleaning up
//! (SIGKILL, a crash, an abort), when no code of ours can run any more.
//!
//! Every process the registry spawns carries `PROCWARD_TOKEN=<prefix><n>`
//! in its environment, with a prefix unique to the registry (the host's
//! pid and the registry's number in it), and its descendants inherit it.
//! The guard holds the read end of a pipe whose write end only the
//! registry holds. On a clean stop the registry has already killed and
//! reaped everything, and writes `exit`. If the pipe reaches end of file
//! without `exit` (the kernel closed it because the host died, or the
//! registry's state was dropped without its `post_stop`), the guard
//! SIGKILLs every process whose environment carries the prefix, and the
//! process group each leads, and repeats until a scan finds none (at most
//! three rounds), to catch children forked meanwhile.
//!
//! Matching by environment instead of by remembered pids means the guard
//! never signals a process that reused one of ours pid: a reused pid does
//! not carry the token. A descendant that clears its environment, or runs
//! a program whose environment cannot be read (set-user-id), escapes the
//! guard, though not its group's kill if it stayed in the group.
//!
//! The guard runs in a process group of its own, so a terminal's Ctrl-C to
//! the host's group does not take it down with the host.

use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};

/// Waits for `exit` on stdin; on end of file without it, kills what
/// carries the token prefix given as `$1`.
const SCRIPT: &str = r#"
prefix="$1"
while IFS= read -r line; do
  [ "$line" = exit ] && exit 0
done
for round in 1 2 3; do
  found=""
  for environ in /proc/[0-9]*/environ; do
    pid="${environ#/proc/}"; pid="${pid%/environ}"
    if tr '\0' '\n' < "$environ" 2>/dev/null | grep -q "^PROCWARD_TOKEN=$prefix"; then
      kill -KILL "-$pid" 2>/dev/null
      kill -KILL "$pid" 2>/dev/null
      found=1
    fi
  done
  [ -z "$found" ] && exit 0
done
exit 0
"#;

/// The running guard process. Dropping it without
/// [`dismiss`](Self::dismiss) makes it kill the registry's processes.
#[derive(Debug)]
pub(crate) struct Guard {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
}

impl Guard {
    /// Starts a guard for the processes whose token starts with `prefix`.
    pub(crate) fn start(prefix: &str) -> io::Result<Guard> {
        let mut child = Command::new(crate::messages::SHELL)
            .args(["-c", SCRIPT, "procward-guard", prefix])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let stdin = child.stdin.take();
        if stdin.is_none() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("the guard has no stdin pipe"));
        }
        Ok(Guard {
            child: Some(child),
            stdin,
        })
    }

    /// The guard's pid (a child of this process that is not a leader).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Tells the guard that everything is already killed and reaped, and
    /// reaps it.
    pub(crate) async fn dismiss(mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            // Five bytes into an empty pipe never block. If the guard is
            // gone already, there is nothing to tell.
            let _ = stdin.write_all(b"exit\n");
        }
        if let Some(mut child) = self.child.take() {
            let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // End of file without `exit`: the guard kills what is left.
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            // Reaped off the caller's thread: the guard may scan /proc
            // for a while.
            let _ = std::thread::Builder::new()
                .name("procward-guard-reaper".to_owned())
                .spawn(move || child.wait());
        }
    }
}
