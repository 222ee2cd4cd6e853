//! `release`: forget a handle, killing its tree first if it is running.

use serde_json::json;

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;

/// The parameters `release` reads; any other is refused.
const PARAMS: &[&str] = &["handle_id"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("release", PARAMS)?;
    let id = params.handle_id()?;
    dispatcher.check_access(id).await?;
    let released = dispatcher.registry().release(id).await?;
    dispatcher.untrack(id);
    Ok(json!({"released": released}).into())
}
