//! The operations, one file each. Every op reads its parameters from a
//! [`Params`](super::params::Params), drives the registry and renders its
//! result object.

pub(crate) mod close_stdin;
pub(crate) mod kill;
pub(crate) mod kill_owner;
pub(crate) mod list;
pub(crate) mod pause;
pub(crate) mod poll;
pub(crate) mod read;
pub(crate) mod release;
pub(crate) mod release_owner;
pub(crate) mod reopen_owner;
pub(crate) mod resume;
pub(crate) mod spawn;
pub(crate) mod wait;
pub(crate) mod write;

/// The ops this version serves.
pub(crate) const KNOWN: &[&str] = &[
    "spawn",
    "poll",
    "wait",
    "kill",
    "release",
    "list",
    "read",
    "write",
    "close_stdin",
    "kill_owner",
    "release_owner",
    "reopen_owner",
    "pause",
    "resume",
];
