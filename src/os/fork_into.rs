//! Forking a child straight into its cgroup: `clone3` with
//! `CLONE_INTO_CGROUP` (Linux 5.7), so the child is a member from its
//! first instruction without migrating into it.
//!
//! Joining a cgroup after the fork (a write to `cgroup.procs` from the
//! child) takes the kernel's global `cgroup_threadgroup_rwsem` for writing,
//! which waits for an RCU grace period and serialises every spawn of the
//! machine: it made cgroup spawns about half as fast as process-group
//! ones. A child made by `clone3` in the cgroup takes that lock only for
//! reading, as every fork does.
//!
//! std's `Command` cannot pass a cgroup to the fork, so this module does
//! what it would: everything that allocates (the argv, the environment,
//! the program's candidate paths, the pipes) is prepared in the parent;
//! the child only makes async-signal-safe system calls (dup2, setpgid or
//! setsid, the limits, chdir, execve) and reports a failure as an errno on
//! a close-on-exec pipe. The child also gets `SIGPIPE` back to its default
//! and an empty signal mask, as std gives them. [`fork_into`] answers
//! `None` where `clone3` is refused (`ENOSYS`, as some seccomp profiles
//! do): the caller then joins after the fork, as before.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use rustix::fs::{Mode, OFlags, open};
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};

use super::limits::InChild;
use crate::messages::{Command, SpawnRequest, Stdin};

/// `clone3` flags (linux/sched.h): a pidfd for the child, and the cgroup.
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of linux/sched.h, up to `cgroup` (size ver 2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// A child forked into its cgroup, with its pidfd and the parent's ends of
/// its pipes.
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

/// Forks `req` into the cgroup at `cgroup` (made already, empty) and has
/// the child execute the program. `Ok(None)` if the kernel refuses
/// `clone3`; an error of the child (a missing program, a bad cwd) comes
/// back as that OS error, with the child reaped. Blocking: for a spawner
/// thread.
pub(crate) fn fork_into(req: &SpawnRequest, cgroup: &Path) -> io::Result<Option<Forked>> {
    let prepared = Prepared::new(req)?;
    let ptrs = |strings: &[CString]| {
        let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        ptrs
    };
    let argv = ptrs(&prepared.argv);
    let envp = ptrs(&prepared.envp);
    let dir = open(
        cgroup,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
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
    let (report_r, report_w) = pipe_with(PipeFlags::CLOEXEC)?;
    let steps = InChild::new(req.limits);

    let mut pidfd: libc::c_int = -1;
    let args = CloneArgs {
        flags: CLONE_PIDFD | CLONE_INTO_CGROUP,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: dir.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: `clone3` without `CLONE_VM` forks: the child gets a copy of
    // this address space with one thread (this one). In the child, the
    // code below only reads memory prepared before the call and makes
    // async-signal-safe system calls, then executes the program or exits
    // with `_exit`; it never returns from this function, allocates, or
    // takes a lock another thread may have held at the fork.
    #[allow(unsafe_code)]
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret == 0 {
        // The child.
        let fds = [
            (stdin_child.as_raw_fd(), 0),
            (stdout_w.as_raw_fd(), 1),
            (stderr_w.as_raw_fd(), 2),
        ];
        let errno = in_child(&fds, &steps, &prepared, &argv, &envp);
        let bytes = errno.to_ne_bytes();
        // SAFETY: async-signal-safe calls on a descriptor of this process;
        // `_exit` ends the child without running anything of the parent's.
        #[allow(unsafe_code)]
        unsafe {
            libc::write(report_w.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127);
        }
    }
    if ret < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            // Refused by a seccomp profile, or a kernel without the
            // cgroup field: join after the fork instead.
            Some(libc::ENOSYS | libc::EPERM | libc::E2BIG | libc::EINVAL) => Ok(None),
            _ => Err(err),
        };
    }
    // The parent. The child's pid fits an i32: the kernel's pids do.
    let pid = Pid::from_raw(ret as i32).ok_or_else(|| io::Error::other("clone3 gave pid 0"))?;
    // SAFETY: the kernel wrote a new descriptor, ours alone, into `pidfd`.
    #[allow(unsafe_code)]
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    drop((stdout_w, stderr_w, stdin_child, report_w, dir));
    let Some(errno) = exec_report(&report_r)? else {
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

/// Reads the child's report: `None` when the pipe closed empty (it closes
/// on exec: the program runs), else the errno the child failed with.
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

/// The child's side, between the fork and the exec: returns the errno of
/// what failed (it returns only on failure).
fn in_child(
    fds: &[(i32, i32); 3],
    steps: &InChild,
    prepared: &Prepared,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> i32 {
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    };
    // SAFETY (for every block below): async-signal-safe system calls on
    // descriptors and memory of this process, prepared before the fork.
    #[allow(unsafe_code)]
    unsafe {
        // As std does: SIGPIPE back to its default, no signal blocked.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        // Move the sources above 2 first, so no dup2 below overwrites a
        // source that happens to be 0, 1 or 2.
        let mut high = [0i32; 3];
        for (slot, (source, _)) in high.iter_mut().zip(fds) {
            let fd = libc::fcntl(*source, libc::F_DUPFD_CLOEXEC, 3);
            if fd < 0 {
                return errno();
            }
            *slot = fd;
        }
        for (fd, (_, target)) in high.iter().zip(fds) {
            if libc::dup2(*fd, *target) < 0 {
                return errno();
            }
        }
    }
    if !steps.new_session() {
        // SAFETY: as above.
        #[allow(unsafe_code)]
        if unsafe { libc::setpgid(0, 0) } < 0 {
            return errno();
        }
    }
    if let Err(err) = steps.run() {
        return err.raw_os_error().unwrap_or(libc::EIO);
    }
    if let Some(cwd) = &prepared.cwd {
        // SAFETY: as above; `cwd` is a C string made before the fork.
        #[allow(unsafe_code)]
        if unsafe { libc::chdir(cwd.as_ptr()) } < 0 {
            return errno();
        }
    }
    // execvp's search: a missing candidate (or one in a missing directory)
    // moves on; a denied one is remembered; anything else stops.
    let mut denied = false;
    let mut last = libc::ENOENT;
    for candidate in &prepared.candidates {
        // SAFETY: as above; the pointer arrays end with a null.
        #[allow(unsafe_code)]
        unsafe {
            libc::execve(candidate.as_ptr(), argv.as_ptr(), envp.as_ptr());
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

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
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
