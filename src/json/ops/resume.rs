//! `resume`: continues a paused process tree (SIGCONT to its group).

use serde_json::Value;

use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;
use crate::json::render;

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Value, JsonError> {
    let id = params.handle_id()?;
    let snapshot = dispatcher.registry().resume(id).await?;
    Ok(Value::Object(render::snapshot(&snapshot)))
}
