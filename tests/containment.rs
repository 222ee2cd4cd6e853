//! Nothing of a tree escapes: orphan reaping, escapee hunting, the guard,
//! per-spawn limits, owners and their fences, pause and resume of a group,
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
    mod escapees;
    mod guard;
    mod limits;
    mod owners;
    mod pause_resume;
    mod procfs;
    mod reap_orphans;
}
