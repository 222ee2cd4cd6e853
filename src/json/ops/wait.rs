//! `wait`: answer when the handle is terminal, or when the wait's own
//! timeout passes first (then `timed_out` is true, `status` is `running`
//! and the process keeps running).

use serde_json::Value;

use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;
use crate::json::render;

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Value, JsonError> {
    let id = params.handle_id()?;
    let timeout = params.millis_either("timeout", "timeout_ms")?;
    let outcome = dispatcher.registry().wait(id, timeout).await?;
    let mut result = render::snapshot(&outcome.snapshot);
    result.insert("timed_out".into(), outcome.timed_out.into());
    Ok(Value::Object(result))
}
