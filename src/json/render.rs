//! How snapshots are written in responses: the original protocol's keys,
//! then procward's additions.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::messages::{HandleSummary, Snapshot, Status, StreamOutput};

/// The result of `spawn`: the original five keys.
pub(crate) fn spawned(snapshot: &Snapshot) -> Value {
    json!({
        "handle_id": snapshot.handle_id.to_string(),
        "pid": snapshot.pid,
        "started_at": timestamp(snapshot.started_at),
        "command": &*snapshot.command,
        "status": snapshot.status.as_str(),
    })
}

/// The full view of a handle, as `poll` answers and `wait` extends.
pub(crate) fn snapshot(snapshot: &Snapshot) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("handle_id".into(), snapshot.handle_id.to_string().into());
    out.insert("status".into(), snapshot.status.as_str().into());
    out.insert("running".into(), snapshot.running().into());
    out.insert("command".into(), (*snapshot.command).into());
    out.insert("started_at".into(), timestamp(snapshot.started_at));
    out.insert("pid".into(), snapshot.pid.into());
    out.insert(
        "exit_code".into(),
        compat_exit_code(snapshot.status, snapshot.exit_code).into(),
    );
    stream(&mut out, "stdout", &snapshot.stdout);
    stream(&mut out, "stderr", &snapshot.stderr);
    out.insert(
        "ended_at".into(),
        snapshot.ended_at.map_or(Value::Null, timestamp),
    );
    out.insert("signal".into(), snapshot.signal.into());
    out.insert("failure".into(), snapshot.failure.clone().into());
    out.insert("owner".into(), snapshot.owner.as_deref().into());
    out.insert("evicted".into(), snapshot.evicted.into());
    out.insert("paused".into(), snapshot.paused.into());
    out.insert(
        "usage".into(),
        snapshot.usage.map_or(Value::Null, |usage| {
            json!({
                "user_time_ms": usage.user_time.as_secs_f64() * 1000.0,
                "system_time_ms": usage.system_time.as_secs_f64() * 1000.0,
                "max_rss_kib": usage.max_rss_kib,
            })
        }),
    );
    out
}

/// One entry of `list`.
pub(crate) fn summary(summary: &HandleSummary) -> Value {
    json!({
        "handle_id": summary.handle_id.to_string(),
        "pid": summary.pid,
        "command": &*summary.command,
        "status": summary.status.as_str(),
        "running": summary.status == Status::Running,
        "started_at": timestamp(summary.started_at),
        "owner": summary.owner.as_deref(),
        "evicted": summary.evicted,
    })
}

/// The original protocol's exit code: `null` while running, `-1` when
/// procward killed the process (a kill or the spawn timeout), and for an
/// exit by a signal nobody in procward sent; the real code otherwise. The
/// `signal` key keeps the real signal.
pub(crate) fn compat_exit_code(status: Status, exit_code: Option<i32>) -> Option<i32> {
    match status {
        Status::Running => None,
        Status::Killed | Status::TimedOut => Some(-1),
        _ => Some(exit_code.unwrap_or(-1)),
    }
}

fn stream(out: &mut Map<String, Value>, name: &str, output: &StreamOutput) {
    out.insert(name.into(), output.text().into_owned().into());
    out.insert(format!("{name}_truncated"), output.truncated.into());
    out.insert(format!("{name}_total_bytes"), output.total_bytes.into());
}

/// RFC 3339 in UTC, for example `2025-01-31T12:00:00.123456Z`.
fn timestamp(at: OffsetDateTime) -> Value {
    // Formatting fails only for years past 9999.
    at.format(&Rfc3339).map_or(Value::Null, Value::String)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn exit_code_is_minus_one_when_killed_or_timed_out() {
        assert_eq!(compat_exit_code(Status::Running, None), None);
        assert_eq!(compat_exit_code(Status::Exited, Some(3)), Some(3));
        assert_eq!(compat_exit_code(Status::Exited, None), Some(-1));
        assert_eq!(compat_exit_code(Status::Killed, None), Some(-1));
        assert_eq!(compat_exit_code(Status::Killed, Some(143)), Some(-1));
        assert_eq!(compat_exit_code(Status::TimedOut, None), Some(-1));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = datetime!(2025-01-31 12:00:00.5 UTC);
        assert_eq!(timestamp(at), "2025-01-31T12:00:00.5Z");
    }

    #[test]
    // StreamOutput is gaining fields (issue 3); keep this test compiling.
    #[allow(clippy::needless_update)]
    fn streams_get_lossy_text_and_totals() {
        let mut out = Map::new();
        let output = StreamOutput {
            bytes: bytes::Bytes::from_static(b"ok\xff"),
            total_bytes: 10,
            truncated: true,
            ..StreamOutput::default()
        };
        stream(&mut out, "stdout", &output);
        assert_eq!(out["stdout"], "ok\u{fffd}");
        assert_eq!(out["stdout_truncated"], true);
        assert_eq!(out["stdout_total_bytes"], 10);
    }
}
