//! A handle's life: spawn and its errors, poll, wait and its timeouts,
//! stdin, drains, kill of whole trees and external signals, release, the
//! registry's cap, unknown handles, process actor failures, ractor users.
//! One binary, one module per behaviour.
//!
//! No test here turns on orphan reaping: reaping makes this OS process a
//! child subreaper for good, and the trees killed here would then leave
//! their orphans to it as zombies that nobody reaps (`wait_group_gone`
//! counts them as survivors). Tests that reap orphans live in
//! `containment` and `output`.

/// What the behaviours share. (The path is where rustc looks anyway;
/// rustfmt needs it spelled out to find the files.)
#[path = "support"]
mod support {
    pub(crate) mod output;
    pub(crate) mod proc;
    pub(crate) use proc::*;
}

mod lifecycle {
    mod cap_policy;
    mod concurrent_spawns;
    mod drain_grace;
    mod external_signal;
    mod kill_escapee_output;
    mod kill_tree;
    mod pending_wait_kill;
    mod process_actor_failure;
    mod ractor_users;
    mod registry_cap;
    mod release;
    mod spawn_errors;
    mod spawn_queue;
    mod spawn_timeout;
    mod spawn_wait;
    mod stdin;
    mod unknown_handle;
    mod wait_timeout;
}
