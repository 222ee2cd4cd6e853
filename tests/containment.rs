//! Nothing of a tree escapes: cgroup containment, orphan reaping, escapee
//! hunting, the guard, per-spawn limits, owners and their fences, pause and
//! resume of a group, usage that is never the host's,
//! and the test `/proc` helpers. One binary, one module per behaviour.
//!
//! Orphan reaping is process-wide and permanent (this OS process becomes a
//! child subreaper): tests whose trees leave orphans either reap them
//! themselves or do not count what is left of their group.

/// What the behaviours share. (The path is where rustc looks anyway;
/// rustfmt needs it spelled out to find the files.)
#[path = "support"]
mod support {
    pub(crate) mod proc;
    pub(crate) use proc::*;
}

mod containment {
    mod cgroup;
    mod cgroup_burst;
    mod escapees;
    mod guard;
    mod guard_adversary;
    mod limits;
    mod owners;
    mod pause_resume;
    mod procfs;
    mod reap_orphans;
    mod usage_host_memory;
}
