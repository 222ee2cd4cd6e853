//! The OS layer under the actors: forking children into process groups,
//! resource limits, signalling and reaping, the `/proc` reader, escapee
//! tokens, the guard process, and the worker thread that does the blocking
//! part of all of it.
//!
//! Every `unsafe` block and every raw OS call of procward lives in this
//! module, each with a comment on why it is sound. The actors above call
//! it; it never calls them.

pub(crate) mod cgroup;
pub(crate) mod child;
mod clone3;
pub(crate) mod escapees;
mod fork_into;
pub(crate) mod guard;
mod limits;
// `pub` only for `crate::__test_support`, which tests use.
pub mod procfs;
pub(crate) mod worker;
