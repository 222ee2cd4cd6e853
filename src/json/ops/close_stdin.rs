//! `close_stdin`: end of file for a piped stdin, after the writes sent
//! before it.

use serde_json::json;

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;

/// The parameters `close_stdin` reads; any other is refused.
const PARAMS: &[&str] = &["handle_id"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("close_stdin", PARAMS)?;
    let id = params.handle_id()?;
    dispatcher.check_access(id).await?;
    dispatcher.registry().close_stdin(id).await?;
    Ok(json!({"closed": true}).into())
}
