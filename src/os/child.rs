//! The OS side of one child: starting it in a process group of its own,
//! watching for its exit, signalling its group, and reaping it.
//!
//! [`spawn`] forks on the [OS worker](super::worker)'s thread and needs no
//! runtime; [`RawSpawned::register`] then hands the pipes and the pidfd to
//! the tokio reactor of the caller. A child holds three descriptors here
//! (its stdout and stderr pipes and one pidfd, shared by the exit watch of
//! its I/O task and the reaper), four with a piped stdin.
//!
//! Under cgroup containment the child also joins a cgroup of its own
//! before it executes the program ([`super::cgroup`]), and a SIGKILL of the
//! group also has the OS worker kill the cgroup, which holds the members
//! that left the group.
//!
//! Every signal procward sends goes through [`ChildProcess::signal_group`],
//! and that refuses once the child is reaped. The child's pid is also its
//! process-group id; while the child is unreaped (running, or a zombie), the
//! kernel cannot give that number to another process or group, so a signal
//! to the group can only reach processes of this tree. procward reaps the
//! child in one place, [`ChildProcess::reap`], called by the process actor
//! after its last signal. All OS calls go through `rustix`; the one
//! `unsafe` block registers the pidfd with tokio's reactor, and says why
//! that is sound.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustix::process::{
    Pid, PidfdFlags, Signal, WaitId, WaitIdOptions, WaitIdStatus, kill_process_group, pidfd_open,
    waitid,
};
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

use super::cgroup::Placement;
use crate::error::Error;
use crate::messages::{Command, Containment, ResourceUsage, SpawnRequest, Stdin};

/// How a process ended, as the kernel reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExitInfo {
    /// The exit code, for a normal exit.
    pub(crate) code: Option<i32>,
    /// The signal that ended it, otherwise.
    pub(crate) signal: Option<i32>,
}

impl ExitInfo {
    fn from_status(status: &WaitIdStatus) -> Self {
        ExitInfo {
            code: status.exit_status(),
            signal: status.terminating_signal(),
        }
    }
}

/// A forked child with its pipes, not yet registered with any runtime.
/// Dropping it kills the child's group and reaps it, like [`ChildProcess`].
#[derive(Debug)]
pub(crate) struct RawSpawned {
    pub(crate) child: ChildProcess,
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

impl RawSpawned {
    /// A forked child with our ends of its pipes, which are made
    /// non-blocking here, on the spawner thread, so that
    /// [`register`](Self::register) has only the reactor's registration
    /// left to do on the runtime (tokio's checked conversion would add a
    /// `fstat` and a read of the flags per pipe there). On error the child
    /// is dropped: killed and reaped.
    fn new(
        child: ChildProcess,
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> Result<RawSpawned, Error> {
        for pipe in stdin.iter().chain([&stdout, &stderr]) {
            // Our ends were made by `pipe2` with no status flag but
            // close-on-exec (a descriptor flag), so setting the status
            // flags to non-blocking alone changes nothing else.
            rustix::fs::fcntl_setfl(pipe, rustix::fs::OFlags::NONBLOCK).map_err(|errno| {
                Error::Os {
                    operation: "making the child's pipes non-blocking".into(),
                    source: io::Error::from(errno).into(),
                }
            })?;
        }
        Ok(RawSpawned {
            child,
            stdin,
            stdout,
            stderr,
        })
    }

    /// Registers the pipes and the pidfd with the current tokio runtime's
    /// reactor. Must run inside a runtime. On error the child is dropped:
    /// killed and reaped.
    pub(crate) fn register(self) -> Result<Spawned, Error> {
        let RawSpawned {
            mut child,
            stdin,
            stdout,
            stderr,
        } = self;
        child.watch().map_err(|source| Error::Os {
            operation: "registering the child's pidfd".into(),
            source: source.into(),
        })?;
        // Each descriptor is our end of a pipe we made, in the right
        // direction, and non-blocking since `new`: what the unchecked
        // conversions leave to us.
        let receiver = |fd| {
            pipe::Receiver::from_owned_fd_unchecked(fd).map_err(|source| Error::Os {
                operation: "registering the child's pipes".into(),
                source: source.into(),
            })
        };
        let stdin = match stdin {
            None => None,
            Some(fd) => {
                Some(
                    pipe::Sender::from_owned_fd_unchecked(fd).map_err(|source| Error::Os {
                        operation: "registering the child's stdin pipe".into(),
                        source: source.into(),
                    })?,
                )
            }
        };
        Ok(Spawned {
            stdout: receiver(stdout)?,
            stderr: receiver(stderr)?,
            stdin,
            child,
        })
    }
}

/// A started child with the read ends of its stdout and stderr pipes, and
/// the write end of its stdin unless that is `/dev/null`.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) child: ChildProcess,
    pub(crate) stdin: Option<pipe::Sender>,
    pub(crate) stdout: pipe::Receiver,
    pub(crate) stderr: pipe::Receiver,
}

/// The std command for `req`: program and arguments, environment, cwd,
/// and stdin as the request says with stdout and stderr piped. Placement,
/// the process group and limits are added by [`spawn`].
fn command(req: &SpawnRequest) -> Result<std::process::Command, Error> {
    let mut cmd = match &req.command {
        Command::Argv(argv) => {
            let (program, args) = argv
                .split_first()
                .ok_or_else(|| Error::invalid("argv is empty"))?;
            let mut cmd = std::process::Command::new(program);
            cmd.args(args);
            cmd
        }
        Command::Shell(line) => {
            let mut cmd = std::process::Command::new(crate::messages::SHELL);
            cmd.arg("-c").arg(line);
            cmd
        }
    };
    if req.clear_env {
        cmd.env_clear();
    }
    cmd.envs(req.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &req.cwd {
        cmd.current_dir(dir);
    }
    let stdin = match req.stdin {
        Stdin::Null => Stdio::null(),
        Stdin::Bytes(_) | Stdin::Pipe => Stdio::piped(),
    };
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Ok(cmd)
}

/// Forks `req` straight into its (new, empty) `cgroup` where the kernel
/// allows it; `None` where it refuses `clone3`, for the caller to join
/// after the fork instead. On a failure the cgroup is removed.
fn spawn_into(req: &SpawnRequest, cgroup: &std::path::Path) -> Result<Option<RawSpawned>, Error> {
    match super::fork_into::fork_into(req, Some(cgroup)) {
        Ok(Some(forked)) => RawSpawned::new(
            ChildProcess {
                pid: forked.pid,
                pidfd: Some(Pidfd::Raw(forked.pidfd)),
                cgroup: Some(cgroup.to_owned()),
            },
            forked.stdin,
            forked.stdout,
            forked.stderr,
        )
        .map(Some),
        Ok(None) => Ok(None),
        Err(source) => {
            // The child never ran the program and was reaped: the cgroup
            // is empty.
            let _ = super::cgroup::remove_tree(cgroup);
            Err(Error::Spawn {
                program: req.command.program().to_owned(),
                cwd: req.cwd.clone(),
                source: source.into(),
            })
        }
    }
}

/// Starts `req` in a new process group whose id is the child's pid, with
/// stdout/stderr piped and stdin as the request says, and in a cgroup of
/// its own made from `placement` when there is one. Blocks until the
/// program is executed (or fails to be): for the OS worker's thread.
pub(crate) fn spawn(
    req: &SpawnRequest,
    placement: Option<&Placement>,
) -> Result<RawSpawned, Error> {
    // The cgroup first: the child is in it before anything else runs.
    let placed = match placement {
        None => None,
        Some(placement) => Some(placement.create().map_err(|source| Error::Containment {
            operation: "making the process tree's cgroup".into(),
            path: placement.parent.join(&placement.name),
            source: source.into(),
        })?),
    };
    if let Some((_, cgroup)) = &placed
        && let Some(spawned) = spawn_into(req, cgroup)?
    {
        return Ok(spawned);
    }
    let mut cmd = command(req)?;
    if let Some((joiner, _)) = &placed {
        joiner.join_in_child(&mut cmd);
    }
    let (joiner, cgroup): (_, Option<std::path::PathBuf>) = placed.unzip();
    if !req.limits.new_session {
        // setpgid(0, 0) in the child, before exec: the group exists before
        // the program can start children of its own. (A new session makes
        // its own group: setsid in `limits::apply`.)
        cmd.process_group(0);
    }
    super::limits::apply(&mut cmd, req.limits);

    let spawned = cmd.spawn();
    // The child has joined (or failed): `cgroup.procs` is not needed again.
    drop(joiner);
    let mut std_child = spawned.map_err(|source| {
        if let Some(cgroup) = &cgroup {
            // The child never ran the program and was reaped by std: the
            // cgroup is empty.
            let _ = super::cgroup::remove_tree(cgroup);
        }
        Error::Spawn {
            program: req.command.program().to_owned(),
            cwd: req.cwd.clone(),
            source: source.into(),
        }
    })?;
    // From here on the child must not escape: every early return goes
    // through `ChildProcess`'s drop, which kills the group and reaps.
    let pid = Pid::from_raw(std_child.id() as i32).ok_or_else(|| Error::Os {
        operation: "reading the child's pid".into(),
        source: io::Error::other("the OS returned pid 0").into(),
    })?;
    // The child cannot have been reaped yet (only we wait for it), so the
    // pidfd refers to it and not to a reused pid.
    let pidfd = pidfd_open(pid, PidfdFlags::empty()).map_err(|errno| {
        // No pidfd: we cannot watch it; end it before it runs unwatched.
        let _ = kill_process_group(pid, Signal::KILL);
        if let Some(cgroup) = &cgroup {
            let _ = super::cgroup::kill_path(cgroup);
        }
        let _ = std_child.wait();
        Error::Os {
            operation: "pidfd_open".into(),
            source: io::Error::from(errno).into(),
        }
    })?;
    let child = ChildProcess {
        pid,
        pidfd: Some(Pidfd::Raw(pidfd)),
        cgroup,
    };
    let stdin = std_child.stdin.take().map(OwnedFd::from);
    let stdout = std_child.stdout.take().map(OwnedFd::from);
    let stderr = std_child.stderr.take().map(OwnedFd::from);
    // `std::process::Child` neither kills nor reaps on drop: dropping it
    // leaves the child to `ChildProcess`.
    drop(std_child);
    let (Some(stdout), Some(stderr)) = (stdout, stderr) else {
        return Err(Error::Os {
            operation: "taking the child's pipes".into(),
            source: io::Error::other("stdout or stderr was not piped").into(),
        });
    };
    RawSpawned::new(child, stdin, stdout, stderr)
}

/// A child's pidfd: plain until [`ChildProcess::watch`] registers it with
/// a runtime, then shared by the exit watcher and the reaper (one
/// descriptor, not a duplicate each).
#[derive(Debug)]
enum Pidfd {
    Raw(OwnedFd),
    Watched(Arc<AsyncFd<OwnedFd>>),
}

impl AsFd for Pidfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Pidfd::Raw(fd) => fd.as_fd(),
            Pidfd::Watched(watched) => watched.get_ref().as_fd(),
        }
    }
}

/// Registers `pidfd` with the current runtime's reactor, for readiness
/// (pidfds turn readable when their process exits, and stay so).
fn register_pidfd(pidfd: OwnedFd) -> Result<AsyncFd<OwnedFd>, (OwnedFd, io::Error)> {
    // SAFETY: `register_with_interest` needs the fd to stay open and the
    // same for the AsyncFd's whole life. `pidfd` is an `OwnedFd` moved into
    // the AsyncFd: nothing else can close or replace it, and its
    // `as_raw_fd` always returns the fd it owns.
    #[allow(unsafe_code)]
    unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) }
        .map_err(|err| err.into_parts())
}

/// Resolves once the child has exited ([`ChildProcess::exit_watch`]).
///
/// It polls the pidfd's readiness with `poll_read_ready`, whose waker slot
/// holds one task: only one task may poll it (the I/O task). Others use
/// [`ChildProcess::exited`], which waits in the readiness's waiter list.
#[derive(Debug)]
pub(crate) struct ExitWatch(Arc<AsyncFd<OwnedFd>>);

impl Future for ExitWatch {
    type Output = io::Result<()>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        // The readiness is kept: a pidfd stays readable once its process
        // exited, and `exited` must see it too.
        self.0
            .poll_read_ready(cx)
            .map_ok(|mut guard| guard.retain_ready())
    }
}

/// The one owner of a child's pid: it signals the child's group while the
/// child is unreaped and reaps it exactly once.
///
/// Dropping an unreaped `ChildProcess` (its actor failed, or its runtime
/// shut down) kills the group and hands the child to the OS worker, which
/// reaps it once it has died, so no child and no zombie outlive procward's
/// bookkeeping.
#[derive(Debug)]
pub(crate) struct ChildProcess {
    pid: Pid,
    /// `None` once the child is reaped.
    pidfd: Option<Pidfd>,
    /// The tree's cgroup, under cgroup containment.
    cgroup: Option<std::path::PathBuf>,
}

impl ChildProcess {
    pub(crate) fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get() as u32
    }

    /// How the tree is contained.
    pub(crate) fn containment(&self) -> Containment {
        match self.cgroup {
            Some(_) => Containment::Cgroup,
            None => Containment::ProcessGroup,
        }
    }

    /// The tree's cgroup directory, under cgroup containment.
    pub(crate) fn cgroup_path(&self) -> Option<&std::path::Path> {
        self.cgroup.as_deref()
    }

    /// Sends `signal` to every process in the child's group; a `SIGKILL`
    /// also has the OS worker kill the tree's cgroup, escapees included.
    ///
    /// Refuses after the child is reaped: the pid could then belong to
    /// anyone. A group with no live member (only the zombie leader left, or
    /// nobody) is not an error.
    pub(crate) fn signal_group(&self, signal: Signal) -> io::Result<()> {
        if self.pidfd.is_none() {
            return Err(io::Error::other(
                "the child is reaped; its group is no longer ours",
            ));
        }
        let group = match kill_process_group(self.pid, signal) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(errno) => Err(errno.into()),
        };
        if signal == Signal::KILL
            && let Some(cgroup) = &self.cgroup
        {
            notify(ChildNotice::Cgroup(
                cgroup.clone(),
                super::cgroup::CgroupWrite::Kill,
            ));
        }
        group
    }

    /// Has the OS worker freeze or thaw the tree's cgroup; `false` when the
    /// tree has no cgroup (the caller stops the group with signals
    /// instead). Freezes and kills are done in the order asked.
    pub(crate) fn freeze(&self, on: bool) -> bool {
        match &self.cgroup {
            Some(cgroup) => {
                notify(ChildNotice::Cgroup(
                    cgroup.clone(),
                    super::cgroup::CgroupWrite::Freeze(on),
                ));
                true
            }
            None => false,
        }
    }

    /// Registers the pidfd with the current runtime's reactor, so that
    /// [`exited`](Self::exited) can be awaited. Must run inside a runtime.
    fn watch(&mut self) -> io::Result<()> {
        if let Some(Pidfd::Raw(_)) = &self.pidfd
            && let Some(Pidfd::Raw(fd)) = self.pidfd.take()
        {
            match register_pidfd(fd) {
                Ok(watched) => self.pidfd = Some(Pidfd::Watched(Arc::new(watched))),
                Err((fd, err)) => {
                    // Keep the pidfd: the drop of `self` kills and reaps.
                    self.pidfd = Some(Pidfd::Raw(fd));
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Resolves once the child has exited; it stays unreaped. The future
    /// shares the child's one pidfd, so it can run on its own task.
    pub(crate) fn exited(&self) -> io::Result<impl Future<Output = io::Result<()>> + use<>> {
        let Some(Pidfd::Watched(watched)) = &self.pidfd else {
            return Err(io::Error::other(
                "the child is already reaped, or its pidfd is not registered",
            ));
        };
        let watched = watched.clone();
        Ok(async move {
            watched.readable().await?.retain_ready();
            Ok(())
        })
    }

    /// The same as [`exited`](Self::exited), as a future of one pointer
    /// that holds no waiter of its own: the I/O task polls it by hand, so a
    /// running process does not carry a readiness future for its exit.
    pub(crate) fn exit_watch(&self) -> io::Result<ExitWatch> {
        match &self.pidfd {
            Some(Pidfd::Watched(watched)) => Ok(ExitWatch(watched.clone())),
            _ => Err(io::Error::other(
                "the child is already reaped, or its pidfd is not registered",
            )),
        }
    }

    /// How the child ended, without reaping it; `None` while it runs.
    pub(crate) fn peek_exit(&self) -> io::Result<Option<ExitInfo>> {
        self.wait_with(WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT)
    }

    /// Reaps the child if it has exited, and returns how it ended and what
    /// it used. After a successful reap no signal can be sent to its group
    /// any more.
    ///
    /// Uses `wait4`, the one call that reaps and reports resource usage
    /// together (rustix has no typed wrapper for it), so the usage is read
    /// by the reaper itself and cannot be raced.
    pub(crate) fn reap(&mut self) -> io::Result<Option<(ExitInfo, ResourceUsage)>> {
        if self.pidfd.is_none() {
            return Err(io::Error::other("the child is already reaped"));
        }
        let pid = self.pid.as_raw_nonzero().get();
        let mut status: libc::c_int = 0;
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        loop {
            // SAFETY: both pointers are to locals that outlive the call and
            // have the types wait4 writes. `pid` is our child and unreaped
            // (pidfd still set), so it names no other process.
            #[allow(unsafe_code)]
            let reaped =
                unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, usage.as_mut_ptr()) };
            match reaped {
                0 => return Ok(None),
                -1 => {
                    let err = io::Error::last_os_error();
                    if err.kind() != io::ErrorKind::Interrupted {
                        return Err(err);
                    }
                }
                _ => break,
            }
        }
        self.pidfd = None;
        notify(ChildNotice::Reaped(pid));
        // SAFETY: the buffer was zeroed (all-zero is a valid rusage: it is
        // plain integers) and wait4 filled it when it reaped.
        #[allow(unsafe_code)]
        let usage = unsafe { usage.assume_init() };
        let exit = ExitInfo {
            code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
            signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        };
        let time = |tv: libc::timeval| {
            Duration::from_secs(tv.tv_sec.max(0) as u64)
                + Duration::from_micros(tv.tv_usec.max(0) as u64)
        };
        // `ru_maxrss` is left out: it starts at the spawning process's own
        // peak (see `ResourceUsage::max_rss_kib`).
        let usage = ResourceUsage {
            user_time: time(usage.ru_utime),
            system_time: time(usage.ru_stime),
            max_rss_kib: None,
            peak_processes: None,
        };
        Ok(Some((exit, usage)))
    }

    fn wait_with(&self, options: WaitIdOptions) -> io::Result<Option<ExitInfo>> {
        let pidfd = self
            .pidfd
            .as_ref()
            .ok_or_else(|| io::Error::other("the child is already reaped"))?;
        loop {
            match waitid(WaitId::PidFd(pidfd.as_fd()), options) {
                Ok(status) => return Ok(status.as_ref().map(ExitInfo::from_status)),
                Err(rustix::io::Errno::INTR) => continue,
                Err(errno) => return Err(errno.into()),
            }
        }
    }

    pub(crate) fn is_reaped(&self) -> bool {
        self.pidfd.is_none()
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let Some(pidfd) = self.pidfd.take() else {
            return;
        };
        let pid = self.pid;
        // Still unreaped, so the group id is still ours.
        let _ = kill_process_group(pid, Signal::KILL);
        // The worker kills the cgroup first, then waits for the leader.
        let cgroup = self.cgroup.take();
        tracing::warn!(
            pid = pid.as_raw_nonzero().get(),
            "child dropped unreaped: killed its group"
        );
        // SIGKILL cannot be caught, so the child dies soon; the OS worker
        // reaps it then. A drop may happen outside any runtime, and many at
        // once (a supervisor killing the registry): no thread per child.
        notify(ChildNotice::Dropped(
            pid.as_raw_nonzero().get(),
            DroppedChild(pidfd),
            cgroup,
        ));
    }
}

/// What a child tells whoever reaps for it (the [OS worker](super::worker))
/// from wherever it is reaped or dropped.
pub(crate) enum ChildNotice {
    /// The child with this pid was reaped by its owner: the pid is no
    /// longer ours.
    Reaped(i32),
    /// The child with this pid was dropped unreaped, its group sent
    /// SIGKILL: kill its cgroup (if any), reap it once it has died, and
    /// remove the cgroup once empty.
    Dropped(i32, DroppedChild, Option<std::path::PathBuf>),
    /// Kill or freeze the tree's cgroup, after every cgroup write asked
    /// before.
    Cgroup(std::path::PathBuf, super::cgroup::CgroupWrite),
}

/// Where notices go. The OS worker installs it when it starts, before it
/// forks any child; so this module needs nothing from the worker above it.
static NOTICES: OnceLock<Box<dyn Fn(ChildNotice) + Send + Sync>> = OnceLock::new();

/// Sends every later [`ChildNotice`] to `sink`. The first call wins.
pub(crate) fn send_notices_to(sink: impl Fn(ChildNotice) + Send + Sync + 'static) {
    let _ = NOTICES.set(Box::new(sink));
}

/// Callable from any thread, inside or outside a runtime.
fn notify(notice: ChildNotice) {
    if let Some(sink) = NOTICES.get() {
        sink(notice);
    }
}

/// The pidfd of a child dropped unreaped, for the OS worker to reap.
#[derive(Debug)]
pub(crate) struct DroppedChild(Pidfd);

impl AsFd for DroppedChild {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits for the child to exit, then reaps it: its exit code.
    fn reap(child: &mut ChildProcess) -> Option<i32> {
        child
            .wait_with(WaitIdOptions::EXITED | WaitIdOptions::NOWAIT)
            .expect("waitid")
            .expect("an exit");
        let (exit, _) = child.reap().expect("wait4").expect("exited");
        exit.code
    }

    #[test]
    fn our_pipe_ends_are_non_blocking_and_the_childs_are_not() {
        // The child's ends are other open files of the same pipes: a
        // program reading its stdin must still block, not get EAGAIN.
        let req = SpawnRequest::shell(
            "for fd in 0 1 2; do grep '^flags' /proc/$$/fdinfo/$fd; done; printf y >&2",
        )
        .stdin(Stdin::Pipe);
        let mut raw = spawn(&req, None).expect("spawn");
        let ours = [
            raw.stdin.as_ref().expect("stdin piped"),
            &raw.stdout,
            &raw.stderr,
        ];
        for pipe in ours {
            let flags = rustix::fs::fcntl_getfl(pipe).expect("F_GETFL");
            assert!(flags.contains(rustix::fs::OFlags::NONBLOCK), "{flags:?}");
        }
        assert_eq!(reap(&mut raw.child), Some(0));
        let mut buf = [0u8; 256];
        let n = rustix::io::read(&raw.stdout, &mut buf).expect("read stdout");
        let theirs = String::from_utf8_lossy(&buf[..n]).into_owned();
        let flags: Vec<u32> = theirs
            .lines()
            .map(|line| {
                let octal = line.split_whitespace().last().expect("flags: <octal>");
                u32::from_str_radix(octal, 8).expect("octal flags")
            })
            .collect();
        assert_eq!(flags.len(), 3, "{theirs}");
        let nonblock = rustix::fs::OFlags::NONBLOCK.bits();
        assert!(flags.iter().all(|f| f & nonblock == 0), "{theirs}");
        let n = rustix::io::read(&raw.stderr, &mut buf).expect("read stderr");
        assert_eq!(&buf[..n], b"y");
    }
}
