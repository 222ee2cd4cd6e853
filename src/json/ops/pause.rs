//! `pause`: stops a process tree (SIGSTOP to its group); it stays `running`, with `paused` set.

use serde_json::Value;

use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;
use crate::json::render;

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Value, JsonError> {
    let id = params.handle_id()?;
    let snapshot = dispatcher.registry().pause(id).await?;
    Ok(Value::Object(render::snapshot(&snapshot)))
}
