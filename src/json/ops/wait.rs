//! `wait`: answer when the handle is terminal, or when the wait's own
//! timeout passes first (then `timed_out` is true, `status` is `running`
//! and the process keeps running). `max_bytes` caps the output bytes of
//! each stream it shows.

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;
use crate::messages::Request;

/// The parameters `wait` reads; any other is refused.
const PARAMS: &[&str] = &["handle_id", "timeout", "timeout_ms", "max_bytes"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("wait", PARAMS)?;
    let id = params.handle_id()?;
    let timeout = params.millis_either("timeout", "timeout_ms")?;
    let limit = dispatcher.output_limit(params)?;
    let outcome = dispatcher.execute(Request::Wait { id, timeout }).await?;
    Ok(Answer::Waited(outcome.into_waited()?, limit))
}
