//! How snapshots are written in responses: the original protocol's keys,
//! then procward's additions.
//!
//! Each view borrows the registry's data and serializes straight to the
//! response bytes: a `poll` answer is written without building a
//! `serde_json::Value` first, and without copying the captured output
//! when it is valid UTF-8. [`Dispatcher::dispatch`](super::Dispatcher)
//! turns the same views into a `Value` for library callers.

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::encoding::{OutputLimit, Shown, show};
use crate::messages::{HandleId, HandleSummary, ResourceUsage, Snapshot, Status, StreamOutput};

/// The result of `spawn`: the original five keys.
#[derive(Debug, Serialize)]
pub(crate) struct Spawned<'a> {
    handle_id: HandleId,
    pid: u32,
    started_at: Timestamp,
    command: &'a str,
    status: &'static str,
}

impl<'a> Spawned<'a> {
    pub(crate) fn new(snapshot: &'a Snapshot) -> Self {
        Spawned {
            handle_id: snapshot.handle_id,
            pid: snapshot.pid,
            started_at: Timestamp(snapshot.started_at),
            command: &snapshot.command,
            status: snapshot.status.as_str(),
        }
    }
}

/// The full view of a handle, as `poll` answers and `wait` extends with
/// `timed_out`. Each stream shows at most the answer's
/// [`OutputLimit`], as text or base64 ([`show`]).
#[derive(Debug, Serialize)]
pub(crate) struct SnapshotView<'a> {
    handle_id: HandleId,
    status: &'static str,
    running: bool,
    command: &'a str,
    started_at: Timestamp,
    pid: u32,
    exit_code: Option<i32>,
    stdout: Shown<'a>,
    stdout_truncated: bool,
    stdout_total_bytes: u64,
    stderr: Shown<'a>,
    stderr_truncated: bool,
    stderr_total_bytes: u64,
    ended_at: Option<Timestamp>,
    signal: Option<i32>,
    failure: Option<&'a str>,
    owner: Option<&'a str>,
    evicted: bool,
    paused: bool,
    containment: &'static str,
    usage: Option<Usage>,
    stdout_encoding: &'static str,
    stdout_cut: bool,
    stderr_encoding: &'static str,
    stderr_cut: bool,
    /// `wait` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    timed_out: Option<bool>,
}

impl<'a> SnapshotView<'a> {
    /// The view `poll` answers with.
    pub(crate) fn new(snapshot: &'a Snapshot, limit: OutputLimit) -> Self {
        let (stdout, stdout_cut) = show_stream(&snapshot.stdout, limit);
        let (stderr, stderr_cut) = show_stream(&snapshot.stderr, limit);
        SnapshotView {
            handle_id: snapshot.handle_id,
            status: snapshot.status.as_str(),
            running: snapshot.running(),
            command: &snapshot.command,
            started_at: Timestamp(snapshot.started_at),
            pid: snapshot.pid,
            exit_code: compat_exit_code(snapshot.status, snapshot.exit_code),
            stdout_encoding: stdout.encoding(),
            stdout,
            stdout_truncated: snapshot.stdout.truncated,
            stdout_total_bytes: snapshot.stdout.total_bytes,
            stderr_encoding: stderr.encoding(),
            stderr,
            stderr_truncated: snapshot.stderr.truncated,
            stderr_total_bytes: snapshot.stderr.total_bytes,
            ended_at: snapshot.ended_at.map(Timestamp),
            signal: snapshot.signal,
            failure: snapshot.failure.as_deref(),
            owner: snapshot.owner.as_deref(),
            evicted: snapshot.evicted,
            paused: snapshot.paused,
            containment: snapshot.containment.as_str(),
            usage: snapshot.usage.as_ref().map(Usage::new),
            stdout_cut,
            stderr_cut,
            timed_out: None,
        }
    }

    /// The view `wait` answers with: the snapshot, then `timed_out`.
    pub(crate) fn waited(snapshot: &'a Snapshot, timed_out: bool, limit: OutputLimit) -> Self {
        SnapshotView {
            timed_out: Some(timed_out),
            ..SnapshotView::new(snapshot, limit)
        }
    }
}

/// One stream within `limit`, and whether it was cut.
fn show_stream(output: &StreamOutput, limit: OutputLimit) -> (Shown<'_>, bool) {
    show(&output.bytes, output.dropped_at, limit)
}

/// CPU times in (fractional) milliseconds and the peak RSS.
#[derive(Debug, Serialize)]
struct Usage {
    user_time_ms: f64,
    system_time_ms: f64,
    max_rss_kib: Option<u64>,
    peak_processes: Option<u64>,
}

impl Usage {
    fn new(usage: &ResourceUsage) -> Self {
        Usage {
            user_time_ms: usage.user_time.as_secs_f64() * 1000.0,
            system_time_ms: usage.system_time.as_secs_f64() * 1000.0,
            max_rss_kib: usage.max_rss_kib,
            peak_processes: usage.peak_processes,
        }
    }
}

/// One entry of `list`.
#[derive(Debug, Serialize)]
pub(crate) struct Summary<'a> {
    handle_id: HandleId,
    pid: u32,
    command: &'a str,
    status: &'static str,
    running: bool,
    started_at: Timestamp,
    owner: Option<&'a str>,
    evicted: bool,
}

impl<'a> Summary<'a> {
    pub(crate) fn new(summary: &'a HandleSummary) -> Self {
        Summary {
            handle_id: summary.handle_id,
            pid: summary.pid,
            command: &summary.command,
            status: summary.status.as_str(),
            running: summary.status == Status::Running,
            started_at: Timestamp(summary.started_at),
            owner: summary.owner.as_deref(),
            evicted: summary.evicted,
        }
    }
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

/// RFC 3339 in UTC, for example `2025-01-31T12:00:00.123456Z`; `null` for
/// a time RFC 3339 cannot write (a year past 9999).
#[derive(Debug, Clone, Copy)]
struct Timestamp(OffsetDateTime);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The longest RFC 3339 time is 35 bytes (nanoseconds and an offset).
        const CAPACITY: usize = 40;
        let mut buffer = [0u8; CAPACITY];
        let mut cursor = &mut buffer[..];
        if self.0.format_into(&mut cursor, &Rfc3339).is_err() {
            return serializer.serialize_none();
        }
        let written = CAPACITY - cursor.len();
        match std::str::from_utf8(&buffer[..written]) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    fn finished() -> Snapshot {
        Snapshot {
            handle_id: "psh-d6e-1".parse().unwrap(),
            pid: 3438,
            command: Arc::from("echo hello"),
            status: Status::Exited,
            started_at: datetime!(2026-11-27 09:09:59.421622113 UTC),
            ended_at: Some(datetime!(2026-11-27 09:09:59.5 UTC)),
            exit_code: Some(3),
            signal: None,
            stdout: StreamOutput {
                bytes: bytes::Bytes::from_static(b"hello\n"),
                total_bytes: 6,
                ..StreamOutput::default()
            },
            stderr: StreamOutput {
                bytes: bytes::Bytes::from_static(b"ok\xff"),
                total_bytes: 10,
                truncated: true,
                ..StreamOutput::default()
            },
            failure: None,
            owner: Some(Arc::from("job-7")),
            paused: false,
            containment: crate::messages::Containment::Cgroup,
            usage: Some(ResourceUsage {
                user_time: Duration::from_micros(1500),
                system_time: Duration::ZERO,
                max_rss_kib: Some(2048),
                peak_processes: None,
            }),
            evicted: false,
        }
    }

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
        let at = Timestamp(datetime!(2025-01-31 12:00:00.5 UTC));
        assert_eq!(serde_json::to_value(at).unwrap(), "2025-01-31T12:00:00.5Z");
    }

    const UNCAPPED: OutputLimit = OutputLimit {
        max_bytes: usize::MAX,
    };

    /// The bytes written, keys in the protocol's order. Output that is not
    /// UTF-8 goes as base64.
    #[test]
    fn a_snapshot_is_written_in_the_protocol_order() {
        let snapshot = finished();
        let written = serde_json::to_string(&SnapshotView::new(&snapshot, UNCAPPED)).unwrap();
        assert_eq!(
            written,
            concat!(
                r#"{"handle_id":"psh-d6e-1","status":"exited","running":false,"#,
                r#""command":"echo hello","started_at":"2026-11-27T09:09:59.421622113Z","#,
                r#""pid":3438,"exit_code":3,"#,
                r#""stdout":"hello\n","stdout_truncated":false,"stdout_total_bytes":6,"#,
                r#""stderr":"b2v/","stderr_truncated":true,"stderr_total_bytes":10,"#,
                r#""ended_at":"2026-11-27T09:09:59.5Z","signal":null,"failure":null,"#,
                r#""owner":"job-7","evicted":false,"paused":false,"containment":"cgroup","#,
                r#""usage":{"user_time_ms":1.5,"system_time_ms":0.0,"max_rss_kib":2048,"peak_processes":null},"#,
                r#""stdout_encoding":"text","stdout_cut":false,"#,
                r#""stderr_encoding":"base64","stderr_cut":false}"#,
            )
        );
        let waited = serde_json::to_value(SnapshotView::waited(&snapshot, true, UNCAPPED)).unwrap();
        assert_eq!(waited["timed_out"], true);
        let keys: Vec<&String> = waited.as_object().unwrap().keys().collect();
        assert_eq!(keys.last().unwrap().as_str(), "timed_out");
    }

    #[test]
    fn each_stream_is_cut_to_the_limit_and_flagged() {
        let snapshot = finished();
        let limit = OutputLimit { max_bytes: 3 };
        let view = serde_json::to_value(SnapshotView::new(&snapshot, limit)).unwrap();
        assert_eq!(view["stdout"], "hel");
        assert_eq!(view["stdout_cut"], true);
        // The totals keep their meaning: what the child wrote.
        assert_eq!(view["stdout_total_bytes"], 6);
        assert_eq!(view["stderr"], "b2v/");
        assert_eq!(view["stderr_encoding"], "base64");
        assert_eq!(view["stderr_cut"], false);
    }

    #[test]
    fn spawned_and_summary_keep_the_original_keys() {
        let snapshot = finished();
        assert_eq!(
            serde_json::to_string(&Spawned::new(&snapshot)).unwrap(),
            r#"{"handle_id":"psh-d6e-1","pid":3438,"started_at":"2026-11-27T09:09:59.421622113Z","command":"echo hello","status":"exited"}"#
        );
        let summary = HandleSummary {
            handle_id: snapshot.handle_id,
            pid: 3438,
            command: snapshot.command.clone(),
            status: Status::Running,
            started_at: snapshot.started_at,
            owner: None,
            evicted: false,
        };
        assert_eq!(
            serde_json::to_value(Summary::new(&summary)).unwrap(),
            json!({
                "handle_id": "psh-d6e-1", "pid": 3438, "command": "echo hello",
                "status": "running", "running": true,
                "started_at": "2026-11-27T09:09:59.421622113Z", "owner": null, "evicted": false,
            })
        );
    }
}
