//! What a process says and how callers watch it: capture and truncation,
//! the output cap, live reads, subscriptions, snapshot watches. One binary,
//! one module per behaviour.
//!
//! Some tests here reap orphans, which makes this OS process a child
//! subreaper for good: no test here counts what is left of a tree that
//! leaves orphans behind without reaping them itself.

/// What the behaviours share. (The path is where rustc looks anyway;
/// rustfmt needs it spelled out to find the files.)
#[path = "support"]
mod support {
    pub(crate) mod output;
    pub(crate) mod proc;
    pub(crate) mod relay;
    pub(crate) use proc::*;
}

mod output {
    mod cap;
    mod capture_live;
    mod quiet_then_writing;
    mod subscribe;
    mod subscribe_at_spawn;
    mod truncation;
    mod watch;
}
