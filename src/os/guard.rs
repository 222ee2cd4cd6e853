//! The registry's guard: a small `sh` process that kills the registry's
//! processes if the program hosting the registry dies without cleaning up
//! (SIGKILL, a crash, an abort), when no code of ours can run any more.
//!
//! The guard learns of the host's death from its own parent pid: the host
//! starts it, and when the host dies the kernel gives the guard another
//! parent. It looks once a second. Then (or when it gets SIGTERM, which
//! the registry sends if its state is dropped without an orderly stop):
//! - under cgroup containment it writes `1` to the registry cgroup's
//!   `cgroup.kill` (every tree, escapees included, dies at once), waits for
//!   the cgroup to empty and removes it;
//! - under process groups it SIGKILLs every process whose environment
//!   carries `PROCWARD_TOKEN=<prefix>...` (every spawn then carries one),
//!   and the group each leads, and repeats until a scan finds none (at
//!   most three rounds). Matching by environment means it never signals a
//!   process that reused one of ours pid; a descendant that clears its
//!   environment, or whose environment cannot be read, escapes it.
//!
//! Nothing a tree can reach stops the guard: it reads no pipe and takes no
//! command (its stdin is `/dev/null`; an orderly stop SIGKILLs it through
//! the host, its parent, which alone may signal its unreaped pid safely).
//! A tree process with the right to signal the guard (the same user, or
//! root) can still kill it: see `docs/security.md`.
//!
//! The guard runs in a process group of its own, so a terminal's Ctrl-C to
//! the host's group does not take it down with the host.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use rustix::process::{
    Pid, PidfdFlags, Signal, getpid, kill_process_group, pidfd_open, pidfd_send_signal,
};

/// Waits for its parent (`$1`) to die, or for SIGTERM, then kills the
/// registry's cgroup (`$2`, when not empty) or what carries the token
/// prefix `$3`. SIGUSR1 dismisses it: it ends its `sleep`, reaps it and
/// exits, so an orderly stop leaves no process behind, not even a zombie
/// for whoever reaps orphans. The `sleep` runs in the background and the
/// shell `wait`s for it, because a trapped signal interrupts `wait` at
/// once but waits for a foreground command to finish.
const SCRIPT: &str = r#"
host="$1"; cgroup="$2"; prefix="$3"
sweep() {
  if [ -n "$cgroup" ]; then
    for try in 1 2 3 4 5 6 7 8 9 10; do
      echo 1 > "$cgroup/cgroup.kill" 2>/dev/null || exit 0
      grep -q '^populated 0' "$cgroup/cgroup.events" 2>/dev/null && break
      sleep 1
    done
    find "$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null
    exit 0
  fi
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
}
sleeper=""
stop_sleeper() {
  if [ -n "$sleeper" ]; then kill -KILL "$sleeper" 2>/dev/null; wait "$sleeper" 2>/dev/null; fi
}
trap 'stop_sleeper; sweep' TERM
trap 'stop_sleeper; exit 0' USR1
while :; do
  read -r stat < /proc/$$/stat || sweep
  set -- $stat
  [ "$4" = "$host" ] || sweep
  sleep 1 &
  sleeper=$!
  wait "$sleeper"
  sleeper=""
done
"#;

/// How long a dismissed guard gets to reap its `sleep` and exit.
const DISMISS_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The running guard process. Dropping it without
/// [`dismiss`](Self::dismiss) makes it kill the registry's processes.
#[derive(Debug)]
pub(crate) struct Guard {
    child: Option<Child>,
}

impl Guard {
    /// Starts a guard for the registry's cgroup, or (without one) for the
    /// processes whose token starts with `prefix`.
    pub(crate) fn start(prefix: &str, cgroup: Option<&Path>) -> io::Result<Guard> {
        let host = getpid().as_raw_nonzero().get().to_string();
        let cgroup = cgroup.map(|path| path.as_os_str()).unwrap_or_default();
        let child = Command::new(crate::messages::SHELL)
            .arg("-c")
            .arg(SCRIPT)
            .arg("procward-guard")
            .arg(host)
            .arg(cgroup)
            .arg(prefix)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(Guard { child: Some(child) })
    }

    /// The guard's pid (a child of this process that is not a leader).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Ends the guard (everything is already killed and reaped) and reaps
    /// it: SIGUSR1 has it reap its own `sleep` and exit; a guard that has
    /// not exited after [`DISMISS_WAIT`] is SIGKILLed with its group.
    pub(crate) async fn dismiss(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Unreaped, so the pid is still the guard's: the pidfd names it
        // for good, even once the blocking wait below has reaped it.
        let pidfd = Pid::from_raw(child.id() as i32)
            .and_then(|pid| pidfd_open(pid, PidfdFlags::empty()).ok());
        if let Some(pidfd) = &pidfd {
            let _ = pidfd_send_signal(pidfd, Signal::USR1);
        }
        let mut wait = tokio::task::spawn_blocking(move || child.wait());
        if tokio::time::timeout(DISMISS_WAIT, &mut wait).await.is_err() {
            tracing::warn!("the guard did not exit when dismissed; killing it");
            if let Some(pidfd) = &pidfd {
                let _ = pidfd_send_signal(pidfd, Signal::KILL);
            }
            let _ = wait.await;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Dropped without a dismissal (the registry's state was dropped
            // without its `post_stop`): the guard sweeps now (its trap
            // runs once its `sleep`, in its group, dies), then exits.
            if let Some(pid) = Pid::from_raw(child.id() as i32) {
                let _ = kill_process_group(pid, Signal::TERM);
            }
            let _ = std::thread::Builder::new()
                .name("procward-guard-reaper".to_owned())
                .spawn(move || child.wait());
        }
    }
}
