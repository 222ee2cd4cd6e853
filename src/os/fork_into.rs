//! Starting a child with our own fork and exec: straight into its cgroup
//! (`clone3` with `CLONE_INTO_CGROUP`, Linux 5.7), so the child is a
//! member from its first instruction without migrating into it; or, in
//! process-group mode, the same without the cgroup.
//!
//! Joining a cgroup after the fork (a write to `cgroup.procs` from the
//! child) takes the kernel's global `cgroup_threadgroup_rwsem` for writing,
//! which waits for an RCU grace period and serialises every spawn of the
//! machine: it made cgroup spawns about half as fast as process-group
//! ones. A child made by `clone3` in the cgroup takes that lock only for
//! reading, as every fork does.
//!
//! On x86_64 and aarch64 the child shares our memory until it executes the
//! program ([`clone3::vfork`](super::clone3)), as `posix_spawn` does: no
//! page tables are copied, and this thread sleeps until the child has
//! executed the program or exited. Elsewhere it is a plain fork.
//!
//! std's `Command` cannot pass a cgroup to the fork, so this module does
//! what it would: everything that allocates (the argv, the environment,
//! the program's candidate paths, the pipes) is prepared in the parent;
//! the child only makes async-signal-safe system calls (dup2, setpgid or
//! setsid, the limits, chdir, execve) and, if one fails, leaves its errno
//! where the parent reads it: in memory we share (vfork-style), or on a
//! close-on-exec pipe (a plain fork). The child also gets `SIGPIPE` back to
//! its default and an empty signal mask, as std gives them, and every
//! signal we handle reset to its default (`CLONE_CLEAR_SIGHAND`).
//! [`fork_into`] answers `None` where `clone3` or one of its flags is
//! refused (`ENOSYS`, as some seccomp profiles do; `E2BIG` or `EINVAL` on
//! an older kernel): the caller then starts the child through std's
//! `Command` instead.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::sync::atomic::AtomicI32;

use rustix::fs::{Mode, OFlags, open};
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};

use super::clone3::{CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP, CLONE_PIDFD, CloneArgs};
use super::limits::InChild;
use crate::messages::{Command, SpawnRequest, Stdin};

/// A child started by [`fork_into`], with its pidfd and the parent's ends
/// of its pipes.
pub(crate) struct Forked {
    pub(crate) pid: Pid,
    pub(crate) pidfd: OwnedFd,
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: OwnedFd,
}

/// What the child needs, prepared in the parent: C strings and the
/// pointer arrays over them, which the child only reads.
struct Prepared {
    candidates: Vec<CString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: Option<CString>,
}

impl Prepared {
    fn new(req: &SpawnRequest) -> io::Result<Prepared> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
        let argv: Vec<OsString> = match &req.command {
            Command::Argv(argv) => argv.iter().map(OsString::from).collect(),
            Command::Shell(line) => vec![
                crate::messages::SHELL.into(),
                "-c".into(),
                OsString::from(line),
            ],
        };
        let program = argv.first().ok_or_else(|| invalid("argv is empty"))?;
        let env = environment(req);
        let candidates = candidates(program, req.child_path().as_deref());
        let c = |bytes: Vec<u8>| CString::new(bytes).map_err(|_| invalid("a NUL byte"));
        Ok(Prepared {
            candidates: candidates
                .into_iter()
                .map(|path| c(path.into_vec()))
                .collect::<io::Result<_>>()?,
            argv: argv
                .into_iter()
                .map(|arg| c(arg.into_vec()))
                .collect::<io::Result<_>>()?,
            envp: env
                .into_iter()
                .map(|(key, value)| {
                    let mut pair = key.into_vec();
                    pair.push(b'=');
                    pair.extend_from_slice(value.as_bytes());
                    c(pair)
                })
                .collect::<io::Result<_>>()?,
            cwd: req
                .cwd
                .as_ref()
                .map(|dir| c(dir.as_os_str().as_bytes().to_vec()))
                .transpose()?,
        })
    }
}

/// The child's environment: ours unless the request clears it, then the
/// request's variables in order (a later one replaces an earlier one).
fn environment(req: &SpawnRequest) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = if req.clear_env {
        Vec::new()
    } else {
        std::env::vars_os().collect()
    };
    for (key, value) in &req.env {
        let key = OsString::from(key);
        env.retain(|(existing, _)| *existing != key);
        env.push((key, OsString::from(value)));
    }
    env
}

/// Where `execvp` would look for `program`: the program itself when it
/// names a path (`/` in it), else each directory of the child's `path`
/// ([`SpawnRequest::child_path`]; `/bin:/usr/bin` when it has none), an
/// empty entry meaning the child's working directory.
fn candidates(program: &OsStr, path: Option<&OsStr>) -> Vec<OsString> {
    if program.as_bytes().contains(&b'/') {
        return vec![program.to_owned()];
    }
    path.unwrap_or(OsStr::new("/bin:/usr/bin"))
        .as_bytes()
        .split(|&b| b == b':')
        .map(|dir| {
            let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
            let mut candidate = dir.to_vec();
            candidate.push(b'/');
            candidate.extend_from_slice(program.as_bytes());
            OsString::from_vec(candidate)
        })
        .collect()
}

/// Starts `req` in the cgroup at `cgroup` (made already, empty), or with
/// no cgroup of its own when `None`, and has the child execute the
/// program. `Ok(None)` if the kernel refuses `clone3` or its flags; an
/// error of the child (a missing program, a bad cwd) comes back as that OS
/// error, with the child reaped. Blocking: for a spawner thread.
pub(crate) fn fork_into(req: &SpawnRequest, cgroup: Option<&Path>) -> io::Result<Option<Forked>> {
    start(req, cgroup, None)
}

/// [`fork_into`], with a signal the child sends itself before it executes
/// the program (`raise`, for tests).
fn start(
    req: &SpawnRequest,
    cgroup: Option<&Path>,
    raise: Option<i32>,
) -> io::Result<Option<Forked>> {
    let prepared = Prepared::new(req)?;
    let ptrs = |strings: &[CString]| {
        let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        ptrs
    };
    let argv = ptrs(&prepared.argv);
    let envp = ptrs(&prepared.envp);
    let dir = cgroup
        .map(|cgroup| {
            open(
                cgroup,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
        })
        .transpose()?;
    let (stdout_r, stdout_w) = pipe_with(PipeFlags::CLOEXEC)?;
    let (stderr_r, stderr_w) = pipe_with(PipeFlags::CLOEXEC)?;
    let (stdin_parent, stdin_child) = match req.stdin {
        Stdin::Null => (
            None,
            open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?,
        ),
        Stdin::Bytes(_) | Stdin::Pipe => {
            let (read, write) = pipe_with(PipeFlags::CLOEXEC)?;
            (Some(write), read)
        }
    };
    let child = Child {
        fds: [
            (stdin_child.as_raw_fd(), 0),
            (stdout_w.as_raw_fd(), 1),
            (stderr_w.as_raw_fd(), 2),
        ],
        steps: InChild::new(req.limits),
        prepared: &prepared,
        argv: &argv,
        envp: &envp,
        raise,
        errno: AtomicI32::new(0),
    };

    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        // Every signal we handle starts at its default in the child (a
        // vfork-style child must never run our handlers; a forked one
        // then behaves the same).
        flags: CLONE_PIDFD | CLONE_CLEAR_SIGHAND,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(dir) = &dir {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = dir.as_raw_fd() as u64;
    }
    let (pid, failed) = match clone_child(&mut args, &child) {
        Ok(started) => started,
        // Refused by a seccomp profile, or a kernel without a flag we
        // pass: the caller starts the child another way.
        Err(err)
            if matches!(
                err.raw_os_error(),
                Some(libc::ENOSYS | libc::EPERM | libc::E2BIG | libc::EINVAL)
            ) =>
        {
            return Ok(None);
        }
        Err(err) => return Err(err),
    };
    let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::other("clone3 gave pid 0"))?;
    // SAFETY: `clone3` succeeded, so the kernel wrote a new descriptor,
    // ours alone, into `pidfd` (`CLONE_PIDFD`).
    #[allow(unsafe_code)]
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    drop((stdout_w, stderr_w, stdin_child, dir));
    let Some(errno) = failed else {
        return Ok(Some(Forked {
            pid,
            pidfd,
            stdin: stdin_parent,
            stdout: stdout_r,
            stderr: stderr_r,
        }));
    };
    // The child failed before or at exec and exited: reap it.
    let _ = waitid(WaitId::PidFd(pidfd.as_fd()), WaitIdOptions::EXITED);
    Err(io::Error::from_raw_os_error(errno))
}

/// What the child reads (prepared in the parent) and where it leaves its
/// errno if it cannot execute the program.
struct Child<'a> {
    /// (source, target) descriptors: stdin, stdout, stderr.
    fds: [(i32, i32); 3],
    steps: InChild,
    prepared: &'a Prepared,
    /// Null-terminated pointer arrays over `prepared`'s strings.
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    /// A signal the child sends itself before exec (tests only).
    raise: Option<i32>,
    /// The child's errno if it failed, written by the child (vfork-style:
    /// in our memory) before it exits; 0 if it executed the program.
    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(dead_code)
    )]
    errno: AtomicI32,
}

/// Starts the child vfork-style: `Ok((pid, Some(errno)))` if it could not
/// execute the program (it has exited), `Ok((pid, None))` if it did.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn clone_child(args: &mut CloneArgs, child: &Child<'_>) -> io::Result<(i32, Option<i32>)> {
    use std::ffi::c_void;
    use std::sync::atomic::Ordering;
    // SAFETY: `vfork`'s contract: `child_main` reads only `child`, which
    // lives (and nobody changes) until `vfork` returns, since it is
    // borrowed for this whole call; it writes only `child.errno`, an
    // atomic nobody else touches meanwhile; `in_child` makes only
    // async-signal-safe system calls, allocates nothing and takes no lock,
    // and `child_main` ends with `execve` or `_exit`.
    #[allow(unsafe_code)]
    let pid = unsafe {
        super::clone3::vfork(args, child_main, child as *const Child<'_> as *mut c_void)
    }?;
    // `CLONE_VFORK`: the child has executed the program or exited, and
    // whatever it wrote is visible now.
    let errno = child.errno.load(Ordering::Acquire);
    Ok((pid, (errno != 0).then_some(errno)))
}

/// The child's function (vfork-style): prepares and executes the program,
/// or leaves the errno of what failed in `Child::errno` and exits 127.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
extern "C" fn child_main(arg: *mut std::ffi::c_void) -> ! {
    // SAFETY: `arg` is the `&Child` that `clone_child` passed, alive and
    // unchanged until the parent resumes, which is after this process has
    // executed a program or exited.
    #[allow(unsafe_code)]
    let child = unsafe { &*(arg as *const Child<'_>) };
    let errno = in_child(child);
    child
        .errno
        .store(errno, std::sync::atomic::Ordering::Release);
    // SAFETY: `_exit` ends this process at once, running nothing of the
    // parent's (no atexit handler, no destructor).
    #[allow(unsafe_code)]
    unsafe {
        libc::_exit(127)
    }
}

/// Starts the child by a plain fork: `Ok((pid, Some(errno)))` if it could
/// not execute the program (it has exited), `Ok((pid, None))` if it did.
/// The child reports on a close-on-exec pipe, which closes empty on exec.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn clone_child(args: &mut CloneArgs, child: &Child<'_>) -> io::Result<(i32, Option<i32>)> {
    let (report_r, report_w) = pipe_with(PipeFlags::CLOEXEC)?;
    // SAFETY: `clone3::fork`'s contract: in the child, the code below only
    // reads memory prepared before the call and makes async-signal-safe
    // system calls, then executes the program or exits with `_exit`; it
    // never returns from this function, allocates, or takes a lock.
    #[allow(unsafe_code)]
    let pid = unsafe { super::clone3::fork(args) }?;
    if pid == 0 {
        let bytes = in_child(child).to_ne_bytes();
        // SAFETY: async-signal-safe calls on a descriptor of this process;
        // `_exit` ends the child without running anything of the parent's.
        #[allow(unsafe_code)]
        unsafe {
            libc::write(report_w.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127);
        }
    }
    drop(report_w);
    Ok((pid, exec_report(&report_r)?))
}

/// Reads the child's report: `None` when the pipe closed empty (it closes
/// on exec: the program runs), else the errno the child failed with.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn exec_report(report: &OwnedFd) -> io::Result<Option<i32>> {
    let mut bytes = [0u8; 4];
    let mut got = 0;
    while got < bytes.len() {
        match rustix::io::read(report, &mut bytes[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok((got > 0).then(|| i32::from_ne_bytes(bytes)))
}

/// The child's side, between the clone and the exec: returns the errno of
/// what failed (never 0; it returns only on failure).
fn in_child(child: &Child<'_>) -> i32 {
    let errno = || match io::Error::last_os_error().raw_os_error() {
        Some(0) | None => libc::EIO,
        Some(errno) => errno,
    };
    // SAFETY (for every block below): async-signal-safe system calls on
    // descriptors and memory of this process, prepared before the clone.
    #[allow(unsafe_code)]
    unsafe {
        // As std does: SIGPIPE back to its default (we ignore it), no
        // signal blocked. Every signal we handle is at its default
        // already (`CLONE_CLEAR_SIGHAND`); ignored ones stay ignored.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        if let Some(signal) = child.raise {
            libc::kill(libc::getpid(), signal);
        }
        // Move the sources above 2 first, so no dup2 below overwrites a
        // source that happens to be 0, 1 or 2.
        let mut high = [0i32; 3];
        for (slot, (source, _)) in high.iter_mut().zip(&child.fds) {
            let fd = libc::fcntl(*source, libc::F_DUPFD_CLOEXEC, 3);
            if fd < 0 {
                return errno();
            }
            *slot = fd;
        }
        for (fd, (_, target)) in high.iter().zip(&child.fds) {
            if libc::dup2(*fd, *target) < 0 {
                return errno();
            }
        }
    }
    if !child.steps.new_session() {
        // SAFETY: as above.
        #[allow(unsafe_code)]
        if unsafe { libc::setpgid(0, 0) } < 0 {
            return errno();
        }
    }
    if let Err(err) = child.steps.run() {
        return match err.raw_os_error() {
            Some(0) | None => libc::EIO,
            Some(errno) => errno,
        };
    }
    if let Some(cwd) = &child.prepared.cwd {
        // SAFETY: as above; `cwd` is a C string made before the clone.
        #[allow(unsafe_code)]
        if unsafe { libc::chdir(cwd.as_ptr()) } < 0 {
            return errno();
        }
    }
    // execvp's search: a missing candidate (or one in a missing directory)
    // moves on; a denied one is remembered; anything else stops.
    let mut denied = false;
    let mut last = libc::ENOENT;
    for candidate in &child.prepared.candidates {
        // SAFETY: as above; the pointer arrays end with a null.
        #[allow(unsafe_code)]
        unsafe {
            libc::execve(candidate.as_ptr(), child.argv.as_ptr(), child.envp.as_ptr());
        }
        last = errno();
        match last {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::EACCES => denied = true,
            _ => break,
        }
    }
    if denied && matches!(last, libc::ENOENT | libc::ENOTDIR) {
        libc::EACCES
    } else {
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    /// Waits for the child to exit and reaps it: (exit code, signal).
    fn reap(forked: &Forked) -> (Option<i32>, Option<i32>) {
        let status = waitid(WaitId::PidFd(forked.pidfd.as_fd()), WaitIdOptions::EXITED)
            .expect("waitid")
            .expect("an exit");
        (status.exit_status(), status.terminating_signal())
    }

    fn started(req: &SpawnRequest, raise: Option<i32>) -> Forked {
        start(req, None, raise)
            .expect("the child starts")
            .expect("clone3 is allowed here")
    }

    fn failure(req: &SpawnRequest) -> Option<i32> {
        match fork_into(req, None) {
            Ok(Some(forked)) => {
                reap(&forked);
                panic!("the child started");
            }
            Ok(None) => panic!("clone3 is refused here"),
            Err(err) => err.raw_os_error(),
        }
    }

    #[test]
    fn the_child_runs_the_program_in_its_cwd_with_its_environment_and_group() {
        let req = SpawnRequest::shell(
            "printf '%s|%s|%s|' \"$PROCWARD_CHILD\" \"$(pwd)\" $$; cut -d' ' -f5 /proc/$$/stat",
        )
        .env("PROCWARD_CHILD", "here")
        .cwd("/tmp");
        let forked = started(&req, None);
        let mut out = String::new();
        std::io::Read::read_to_string(
            &mut std::fs::File::from(forked.stdout.try_clone().expect("dup")),
            &mut out,
        )
        .expect("read");
        assert_eq!(reap(&forked), (Some(0), None));
        let fields: Vec<&str> = out.trim().split('|').collect();
        assert_eq!(fields[..2], ["here", "/tmp"]);
        // The shell leads a process group of its own.
        assert_eq!(fields[2], fields[3], "{out}");
    }

    #[test]
    fn a_missing_program_or_cwd_is_reported_with_its_errno() {
        assert_eq!(
            failure(&SpawnRequest::argv(["/nonexistent/procward-test"])),
            Some(libc::ENOENT)
        );
        assert_eq!(
            failure(&SpawnRequest::argv(["procward-no-such-program"]).env("PATH", "/bin:/usr/bin")),
            Some(libc::ENOENT)
        );
        assert_eq!(
            failure(&SpawnRequest::argv(["/bin/true"]).cwd("/nonexistent/procward-test")),
            Some(libc::ENOENT)
        );
    }

    #[test]
    fn an_executable_that_is_no_program_is_enoexec_not_run_by_a_shell() {
        let path = std::env::temp_dir().join(format!("procward-noexec-{}", std::process::id()));
        std::fs::write(&path, "touch /nonexistent/ran\n").expect("write");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let errno = failure(&SpawnRequest::argv([path.to_string_lossy()]));
        let _ = std::fs::remove_file(&path);
        assert_eq!(errno, Some(libc::ENOEXEC));
    }

    static HANDLER_RAN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    extern "C" fn on_usr2(_: libc::c_int) {
        HANDLER_RAN.store(true, Ordering::SeqCst);
    }

    #[test]
    fn a_signal_we_handle_is_at_its_default_in_the_child() {
        // SAFETY: installs a handler that only stores to an atomic; no
        // other test of this binary uses SIGUSR2.
        #[allow(unsafe_code)]
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_usr2 as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(
                libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()),
                0
            );
        }
        // The child shares our memory until exec: had our handler run in
        // it, the flag would be set here, and the child would have gone on
        // to run `true`. At its default, SIGUSR2 ends the child instead.
        let forked = started(&SpawnRequest::argv(["/bin/true"]), Some(libc::SIGUSR2));
        assert_eq!(reap(&forked), (None, Some(libc::SIGUSR2)));
        assert!(!HANDLER_RAN.load(Ordering::SeqCst));
    }

    #[test]
    fn a_program_with_a_slash_is_its_own_only_candidate() {
        let found = candidates(OsStr::new("./run"), Some(OsStr::new("/bin")));
        assert_eq!(found, vec![OsString::from("./run")]);
    }

    #[test]
    fn a_bare_name_is_searched_in_the_childs_path_in_order() {
        let found = candidates(OsStr::new("tool"), Some(OsStr::new("/a::/b")));
        assert_eq!(
            found,
            ["/a/tool", "./tool", "/b/tool"]
                .map(OsString::from)
                .to_vec()
        );
        // The request's last PATH wins; none at all means execvp's default.
        let req = SpawnRequest::argv(["x"])
            .env("PATH", "/a")
            .env("PATH", "/z");
        let found = candidates(OsStr::new("x"), req.child_path().as_deref());
        assert_eq!(found, vec![OsString::from("/z/x")]);
        let found = candidates(OsStr::new("x"), None);
        assert_eq!(found, ["/bin/x", "/usr/bin/x"].map(OsString::from).to_vec());
    }

    #[test]
    fn the_requests_variables_replace_ours_and_clearing_drops_ours() {
        let req = SpawnRequest::argv(["true"])
            .env("PROCWARD_FORK_INTO_TEST", "1")
            .env("PROCWARD_FORK_INTO_TEST", "2");
        let built = environment(&req);
        let ours: Vec<_> = built
            .iter()
            .filter(|(k, _)| k == "PROCWARD_FORK_INTO_TEST")
            .collect();
        assert_eq!(ours.len(), 1);
        assert_eq!(ours[0].1, "2");
        let cleared = environment(&SpawnRequest::argv(["true"]).clear_env().env("A", "b"));
        assert_eq!(cleared, env(&[("A", "b")]));
    }
}
