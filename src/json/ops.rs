//! The operations, one file each, and the table that dispatches to them.
//! Every op reads its parameters from a [`Params`], drives the registry
//! through the [`Dispatcher`] it is given and renders its result object.

use serde_json::{Map, Value};

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

impl Dispatcher {
    /// Runs `op` with `params` (the request object without `id` and `op`).
    ///
    /// A parameter the op does not know is an `invalid_request` naming it;
    /// a parameter that is `null` counts as absent.
    ///
    /// Cancel safety: as for the [`Registry`](crate::Registry) method behind the op. A
    /// dropped `spawn` may still start its process, and then that process
    /// is not remembered for [`kill_owned`](Self::kill_owned).
    pub async fn dispatch(
        &self,
        op: &str,
        params: &Map<String, Value>,
    ) -> Result<Value, JsonError> {
        self.answer(op, params).await?.into_value()
    }

    /// Runs `op` as [`dispatch`](Self::dispatch) does, and leaves the
    /// result as the registry gave it, for the server to write straight
    /// into the response line.
    pub(crate) async fn answer(
        &self,
        op: &str,
        params: &Map<String, Value>,
    ) -> Result<Answer, JsonError> {
        run(self, op, Params(params)).await.unwrap_or_else(|| {
            Err(JsonError::UnknownOp {
                op: op.to_owned(),
                known: KNOWN,
            })
        })
    }
}
