//! `write`: append bytes to the stdin of a process spawned with
//! `"stdin": "pipe"`. Answers once the bytes are in the pipe.

use serde_json::json;

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::encoding::decode_bytes;
use crate::json::error::JsonError;
use crate::json::params::Params;

/// The parameters `write` reads; any other is refused.
const PARAMS: &[&str] = &["handle_id", "data"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("write", PARAMS)?;
    let id = params.handle_id()?;
    dispatcher.check_access(id).await?;
    let data = params
        .get("data")
        .ok_or_else(|| JsonError::invalid("missing `data`: the bytes to write"))?;
    let bytes = decode_bytes("data", data)?;
    let written = bytes.len();
    dispatcher.registry().write(id, bytes).await?;
    Ok(json!({"written": written}).into())
}
