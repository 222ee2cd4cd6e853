//! `kill`: kill a handle's process tree, with an optional first signal and
//! grace before `SIGKILL`. Answers once the handle is terminal.

use std::time::Duration;

use serde_json::json;

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::error::JsonError;
use crate::json::params::Params;
use crate::json::{render, signal};
use crate::messages::{KillRequest, Request, Signal};

/// The parameters `kill` reads; any other is refused.
const PARAMS: &[&str] = &["handle_id", "signal", "grace_ms"];

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    params.only("kill", PARAMS)?;
    let id = params.handle_id()?;
    let request = parse(params)?;
    let snapshot = dispatcher
        .execute(Request::Kill { id, request })
        .await?
        .into_snapshot()?;
    Ok(json!({
        "success": true,
        "status": snapshot.status.as_str(),
        "handle_id": snapshot.handle_id.to_string(),
        "exit_code": render::compat_exit_code(snapshot.status, snapshot.exit_code),
        "signal": snapshot.signal,
    })
    .into())
}

pub(crate) fn parse(params: Params<'_>) -> Result<KillRequest, JsonError> {
    let defaults = KillRequest::default();
    let signal = match params.get("signal") {
        None => defaults.signal,
        Some(value) => signal::parse("signal", value)?,
    };
    let grace = params.count("grace_ms")?.map(Duration::from_millis);
    Ok(kill_request(signal, grace.or(defaults.grace)))
}

// KillRequest may gain fields; fill them from the default.
#[allow(clippy::needless_update)]
fn kill_request(signal: Signal, grace: Option<Duration>) -> KillRequest {
    KillRequest {
        signal,
        grace,
        ..KillRequest::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value};

    use super::*;

    fn parse_json(value: Value) -> Result<KillRequest, JsonError> {
        let Value::Object(map) = value else {
            return parse(Params(&Map::new()));
        };
        parse(Params(&map))
    }

    #[test]
    fn defaults_to_sigkill() {
        let req = parse_json(json!({})).unwrap();
        assert_eq!(req.signal, Signal::KILL);
        assert_eq!(req.grace, None);
    }

    #[test]
    fn takes_a_named_signal_and_a_grace() {
        let req = parse_json(json!({"signal": "TERM", "grace_ms": 200})).unwrap();
        assert_eq!(req.signal, Signal::TERM);
        assert_eq!(req.grace, Some(Duration::from_millis(200)));
    }

    #[test]
    fn rejects_negative_grace_and_bad_signals() {
        assert!(
            parse_json(json!({"grace_ms": -1}))
                .unwrap_err()
                .to_string()
                .contains("negative")
        );
        assert!(
            parse_json(json!({"signal": true}))
                .unwrap_err()
                .to_string()
                .contains("`signal`")
        );
    }
}
