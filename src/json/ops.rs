//! The operations, one file each. Every op reads its parameters from a
//! [`Params`](super::params::Params), drives the registry and renders its
//! result object.

pub(crate) mod close_stdin;
pub(crate) mod kill;
pub(crate) mod list;
pub(crate) mod poll;
pub(crate) mod read;
pub(crate) mod release;
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
];

/// Ops of the protocol that this version cannot serve yet: they answer
/// `unknown_op` with a message saying so.
pub(crate) const PLANNED: &[&str] = &["kill_owner"];
