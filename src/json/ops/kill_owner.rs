//! `kill_owner`: kill every running process of an owner at once (for a
//! script or session that was cancelled), spawns of the owner still
//! starting included. Answers once all are terminal. With `close: true`
//! the owner is also closed: its later spawns are `policy_denied` (rule
//! `owner_closed`) until `reopen_owner`.

use serde_json::{Value, json};

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::ops::kill;
use crate::json::params::Params;
use crate::json::render;
use crate::messages::Request;

/// The parameters `kill_owner` reads; any other is refused.
const PARAMS: &[&str] = &["owner", "signal", "grace_ms", "close"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("kill_owner", PARAMS)?;
    let owner = params
        .str("owner")?
        .ok_or_else(|| JsonError::invalid("missing `owner`"))?;
    let request = Request::KillOwner {
        owner: owner.to_owned(),
        request: kill::parse(params)?,
        close: params.bool("close")?.unwrap_or(false),
    };
    let snapshots = dispatcher.execute(request).await?.into_killed()?;
    let handles: Vec<Value> = snapshots
        .iter()
        .map(|snapshot| {
            json!({
                "handle_id": snapshot.handle_id.to_string(),
                "status": snapshot.status.as_str(),
                "exit_code": render::compat_exit_code(snapshot.status, snapshot.exit_code),
                "signal": snapshot.signal,
            })
        })
        .collect();
    Ok(json!({"killed": handles.len(), "handles": handles}).into())
}
