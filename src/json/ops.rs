//! The operations, one file each. Every op reads its parameters from a
//! [`Params`](super::params::Params), drives the registry and renders its
//! result object.

use super::answer::Answer;
use super::dispatcher::Dispatcher;
use super::error::JsonError;
use super::params::Params;

/// Declares every op once: its module, its name in [`KNOWN`], and its arm
/// in [`run`], so the list of known ops and the dispatcher cannot disagree.
macro_rules! ops {
    ($($name:literal => $module:ident,)*) => {
        $(pub(crate) mod $module;)*

        /// The ops this version serves.
        pub(crate) const KNOWN: &[&str] = &[$($name),*];

        /// Runs `op`; `None` if no op has that name.
        pub(crate) async fn run(
            dispatcher: &Dispatcher,
            op: &str,
            params: Params<'_>,
        ) -> Option<Result<Answer, JsonError>> {
            match op {
                $($name => Some($module::run(dispatcher, params).await),)*
                _ => None,
            }
        }
    };
}

ops! {
    "spawn" => spawn,
    "poll" => poll,
    "wait" => wait,
    "kill" => kill,
    "release" => release,
    "list" => list,
    "read" => read,
    "write" => write,
    "close_stdin" => close_stdin,
    "kill_owner" => kill_owner,
    "release_owner" => release_owner,
    "reopen_owner" => reopen_owner,
    "pause" => pause,
    "resume" => resume,
}
