//! `clone3`: the kernel's argument struct, and a vfork-style call of it
//! (`CLONE_VM | CLONE_VFORK`) that starts the child on a stack of its own
//! through a few instructions of assembly (x86_64 and aarch64).
//!
//! A forked child (no `CLONE_VM`) gets a copy of the parent's page tables,
//! which costs the parent time in proportion to its mapped memory and
//! serialises with every other thread that maps or unmaps memory. A child
//! made with `CLONE_VM | CLONE_VFORK` shares the parent's memory until it
//! executes its program (or exits), and the calling thread sleeps until
//! then; glibc's and musl's `posix_spawn` start children the same way. The
//! child must then run on a stack of its own, must never return into the
//! parent's frames, and must not run the parent's signal handlers while it
//! shares the parent's memory:
//! - the stack is mapped once per calling thread (with a guard page under
//!   it) and reused: the thread sleeps while its child runs on it;
//! - the `clone3` system call and the call of the child's function are one
//!   `asm!` block, and the child's function never returns (`-> !`);
//! - `CLONE_CLEAR_SIGHAND` has the kernel reset every signal the parent
//!   handles to `SIG_DFL` in the child as it is made (ignored signals stay
//!   ignored), so no handler of the parent can run in the child at any
//!   moment. glibc and musl get there by blocking every signal in the
//!   parent around the clone and resetting the handled ones in the child
//!   before unblocking; the flag (Linux 5.5) does it with no window and no
//!   system call per signal. A kernel without it refuses the flags with
//!   `EINVAL`, which the caller treats as "no `clone3`".

use std::io;

// `clone3` flags (linux/sched.h).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const CLONE_VM: u64 = 0x100;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const CLONE_VFORK: u64 = 0x4000;
pub(super) const CLONE_PIDFD: u64 = 0x1000;
pub(super) const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
pub(super) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of linux/sched.h, up to `cgroup` (size ver 2).
#[repr(C)]
#[derive(Default)]
pub(super) struct CloneArgs {
    pub(super) flags: u64,
    pub(super) pidfd: u64,
    pub(super) child_tid: u64,
    pub(super) parent_tid: u64,
    pub(super) exit_signal: u64,
    pub(super) stack: u64,
    pub(super) stack_size: u64,
    pub(super) tls: u64,
    pub(super) set_tid: u64,
    pub(super) set_tid_size: u64,
    pub(super) cgroup: u64,
}

/// What a `clone3` call returned in the parent.
fn outcome(ret: isize) -> io::Result<i32> {
    if ret < 0 {
        let errno = ret.checked_neg().and_then(|e| i32::try_from(e).ok());
        return Err(io::Error::from_raw_os_error(errno.unwrap_or(libc::EIO)));
    }
    i32::try_from(ret).map_err(|_| io::Error::other("clone3 returned no pid"))
}

/// A plain fork by `clone3` (`args` without `CLONE_VM`): `Ok(0)` in the
/// child, the child's pid in the parent.
///
/// # Safety
///
/// In the child, the caller may only make async-signal-safe calls on
/// memory prepared before the call, and must end with `execve` or `_exit`:
/// the child is a copy of this process with one thread, and any lock
/// another thread held at the fork stays held forever.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[allow(unsafe_code)]
pub(super) unsafe fn fork(args: &CloneArgs) -> io::Result<i32> {
    // SAFETY: the caller upholds the child's rules (above); the kernel
    // reads `args` (a live `clone_args` of the size given) and writes the
    // pidfd where `args.pidfd` points.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    outcome(ret as isize)
}

/// The stack a vfork-style child runs on: `SIZE` bytes over one guard page
/// (`PROT_NONE`, so an overflow faults instead of writing into whatever is
/// mapped below).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
struct ChildStack {
    base: *mut std::ffi::c_void,
    len: usize,
    guard: usize,
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl ChildStack {
    /// Enough for the child's few frames (dup2, the limits, chdir, the
    /// execve loop) in a debug build, with room to spare; only the pages
    /// touched are ever backed by memory.
    const SIZE: usize = 64 * 1024;

    fn new() -> io::Result<ChildStack> {
        // SAFETY: sysconf has no preconditions.
        #[allow(unsafe_code)]
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let guard = usize::try_from(page)
            .ok()
            .filter(|&p| p > 0)
            .unwrap_or(4096);
        let len = Self::SIZE + guard;
        // SAFETY: a new anonymous private mapping at an address of the
        // kernel's choosing: it overlaps nothing of ours.
        #[allow(unsafe_code)]
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = ChildStack { base, len, guard };
        // SAFETY: the lowest page of the mapping made above, which nothing
        // uses yet.
        #[allow(unsafe_code)]
        if unsafe { libc::mprotect(base, guard, libc::PROT_NONE) } < 0 {
            // `stack` is dropped: unmapped.
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The lowest usable address and the usable size, as `clone3` takes
    /// them (it starts the child at `stack + stack_size`, page-aligned).
    fn region(&self) -> (u64, u64) {
        let low = self.base as usize + self.guard;
        (low as u64, (self.len - self.guard) as u64)
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; no child runs
        // on it (a child's use ends before its `clone3` returns).
        #[allow(unsafe_code)]
        unsafe {
            libc::munmap(self.base, self.len);
        }
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
thread_local! {
    /// This thread's child stack, mapped on its first spawn. Taken out for
    /// the length of one `clone3`, put back after.
    static STACK: std::cell::Cell<Option<ChildStack>> = const { std::cell::Cell::new(None) };
}

/// Starts a child with `args` plus `CLONE_VM | CLONE_VFORK |
/// CLONE_CLEAR_SIGHAND`, on this thread's child stack, running `child(arg)`
/// there; returns the child's pid once the child has executed a program or
/// exited. `Err` with the kernel's errno if `clone3` refused.
///
/// # Safety
///
/// `child` runs in a new process that shares this process's memory while
/// this thread sleeps; other threads of this process keep running. So
/// `child` may only read memory that stays valid and unchanged until this
/// call returns (what `arg` points to, prepared by the caller), write only
/// through `arg` to memory nobody else touches meanwhile (atomics), make
/// async-signal-safe system calls, never allocate or take a lock, and end
/// with `execve` or `_exit`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[allow(unsafe_code)]
pub(super) unsafe fn vfork(
    args: &mut CloneArgs,
    child: extern "C" fn(*mut std::ffi::c_void) -> !,
    arg: *mut std::ffi::c_void,
) -> io::Result<i32> {
    let stack = match STACK.take() {
        Some(stack) => stack,
        None => ChildStack::new()?,
    };
    (args.stack, args.stack_size) = stack.region();
    args.flags |= CLONE_VM | CLONE_VFORK | CLONE_CLEAR_SIGHAND;
    // SAFETY: `args` is a live `clone_args` of the size passed, with a
    // stack that nothing else uses (taken out of this thread's slot) and
    // that outlives the child's use of it (this call returns only once the
    // child has executed or exited: `CLONE_VFORK`). The child starts on
    // that stack with a copy of our registers, and the `asm!` block calls
    // `child` from there, which never returns: it never runs on, or
    // returns into, this thread's frames. The caller upholds the rest.
    let ret = unsafe { trampoline(args, child, arg) };
    STACK.set(Some(stack));
    outcome(ret)
}

/// `clone3(args)`; in the child, `child(arg)` on the new stack.
///
/// # Safety
///
/// As [`vfork`]: `args` must name a stack only the child uses.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
unsafe fn trampoline(
    args: &mut CloneArgs,
    child: extern "C" fn(*mut std::ffi::c_void) -> !,
    arg: *mut std::ffi::c_void,
) -> isize {
    let ret: isize;
    // SAFETY: see `vfork`. In the parent the block is the system call
    // alone (which clobbers only rax, rcx and r11, declared). The child
    // starts after the `syscall` with rax = 0, rsp at the top of its stack
    // and every other register as the parent's: it clears the frame
    // pointer (the outermost frame, as glibc's clone3.S does), aligns rsp
    // to 16 bytes as the psABI wants at a call, and calls `child(arg)`,
    // which never returns (`ud2` traps if it did).
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "and rsp, -16",
            "mov rdi, r13",
            "call r12",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 as isize => ret,
            in("rdi") args as *mut CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") child,
            in("r13") arg,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// `clone3(args)`; in the child, `child(arg)` on the new stack.
///
/// # Safety
///
/// As [`vfork`]: `args` must name a stack only the child uses.
#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
unsafe fn trampoline(
    args: &mut CloneArgs,
    child: extern "C" fn(*mut std::ffi::c_void) -> !,
    arg: *mut std::ffi::c_void,
) -> isize {
    let ret: isize;
    // SAFETY: see `vfork`. In the parent the block is the system call
    // alone (`svc` returns in x0 and preserves every other register). The
    // child starts after the `svc` with x0 = 0, sp at the top of its stack
    // (16-byte aligned: page-aligned) and every other register as the
    // parent's: it clears the frame pointer and the link register (the
    // outermost frame, as glibc's clone3.S does) and calls `child(arg)`,
    // which never returns (`brk` traps if it did).
    unsafe {
        std::arch::asm!(
            "svc 0",
            "cbnz x0, 2f",
            "mov x29, xzr",
            "mov x30, xzr",
            "mov x0, x10",
            "blr x9",
            "brk 0x1",
            "2:",
            inlateout("x0") args as *mut CloneArgs => ret,
            in("x1") std::mem::size_of::<CloneArgs>(),
            in("x8") libc::SYS_clone3,
            in("x9") child,
            in("x10") arg,
            options(nostack),
        );
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_return_is_the_negated_errno() {
        let err = outcome(-(libc::ENOSYS as isize)).expect_err("an error");
        assert_eq!(err.raw_os_error(), Some(libc::ENOSYS));
        assert_eq!(outcome(1234).expect("a pid"), 1234);
    }
}
