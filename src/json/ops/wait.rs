//! `wait`: answer when the handle is terminal, or when the wait's own
//! timeout passes first (then `timed_out` is true, `status` is `running`
//! and the process keeps running). `max_bytes` caps the output bytes of
//! each stream it shows.

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    let id = params.handle_id()?;
    let timeout = params.millis_either("timeout", "timeout_ms")?;
    let limit = dispatcher.output_limit(params)?;
    let outcome = dispatcher.registry().wait(id, timeout).await?;
    Ok(Answer::Waited(outcome, limit))
}
