//! `list`: every handle the registry holds, oldest first, optionally only
//! those with one status.

use serde_json::{Value, json};

use crate::json::dispatcher::Dispatcher;
use crate::json::error::{JsonError, quoted};
use crate::json::params::Params;
use crate::json::render;
use crate::messages::Status;

const STATUSES: &[Status] = &[
    Status::Running,
    Status::Exited,
    Status::Killed,
    Status::TimedOut,
];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Value, JsonError> {
    if params.get("owner").is_some() {
        return Err(JsonError::invalid(
            "`owner` is not supported by this version of procward yet",
        ));
    }
    let wanted = match params.str("status")? {
        None => None,
        Some(name) => Some(
            STATUSES
                .iter()
                .copied()
                .find(|status| status.as_str() == name)
                .ok_or_else(|| {
                    JsonError::invalid(format!(
                        "`status` must be one of running, exited, killed, timed_out; got {}",
                        quoted(name)
                    ))
                })?,
        ),
    };
    let handles: Vec<Value> = dispatcher
        .registry()
        .list()
        .await?
        .iter()
        .filter(|summary| wanted.is_none_or(|status| summary.status == status))
        .map(render::summary)
        .collect();
    Ok(json!({"handles": handles}))
}
