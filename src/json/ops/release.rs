//! `release`: forget a handle, killing its tree first if it is running.

use serde_json::json;

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::{ErrorKind, JsonError};
use crate::json::params::Params;
use crate::messages::Request;

/// The parameters `release` reads; any other is refused.
const PARAMS: &[&str] = &["handle_id"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("release", PARAMS)?;
    let id = params.handle_id()?;
    let released = match dispatcher.execute(Request::Release { id }).await {
        Ok(answer) => answer.into_released()?,
        // Another connection's handle is, to this one, a handle it does not
        // know: releasing it is the same harmless no-op.
        Err(err) if err.kind() == ErrorKind::UnknownHandle => {
            return Ok(json!({"released": false}).into());
        }
        Err(err) => return Err(err),
    };
    dispatcher.untrack(id);
    Ok(json!({"released": released}).into())
}
