//! What a caller sees of a process: [`Snapshot`], [`Status`] and captured output.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::output::{Kept, OutputStream, ReadChunk, ReadRequest};
use super::{HandleId, ResourceUsage};

/// Where a process is in its life.
///
/// A handle starts `Running` and moves to exactly one terminal status, which
/// never changes after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Status {
    /// The process (or the output it left behind) is still live.
    Running,
    /// The process ended on its own: with an exit code, or by a signal that
    /// procward did not send (see [`Snapshot::signal`]).
    Exited,
    /// procward killed the process tree: a kill request, a release, an
    /// eviction, the registry stopping, or a failure of its process actor.
    Killed,
    /// The spawn-time timeout passed and procward killed the process tree.
    TimedOut,
}

impl Status {
    /// `true` for every status but `Running`.
    pub fn is_terminal(self) -> bool {
        self != Status::Running
    }

    /// The status as it is written in snapshots and logs (`timed_out`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Exited => "exited",
            Status::Killed => "killed",
            Status::TimedOut => "timed_out",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a handle's process tree is held together, and so how it is killed,
/// paused and measured (see `docs/security.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Containment {
    /// The tree has a cgroup v2 of its own: every descendant stays in it
    /// (without write access to the cgroup hierarchy), and a kill, a pause
    /// and the usage cover all of them.
    Cgroup,
    /// The tree is the child's process group: a descendant that calls
    /// `setsid` or `setpgid` leaves it. The default (what a snapshot from a
    /// peer that predates cgroups means).
    #[default]
    ProcessGroup,
}

impl Containment {
    /// The name as snapshots and logs write it (`cgroup`, `process_group`).
    pub fn as_str(self) -> &'static str {
        match self {
            Containment::Cgroup => "cgroup",
            Containment::ProcessGroup => "process_group",
        }
    }
}

/// What was captured of one output stream (stdout or stderr).
///
/// When the child wrote more than the cap, the first half of the cap and the
/// most recent half are kept and the middle is dropped: `bytes` is then the
/// head followed directly by the tail, `truncated` is `true`, `dropped_at`
/// is the index in `bytes` where the tail starts, and
/// `total_bytes - bytes.len()` bytes are missing there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StreamOutput {
    /// The bytes kept, exactly as the child wrote them. Cloning is cheap
    /// (reference counted) whatever the size.
    pub bytes: Bytes,
    /// How many bytes the child wrote to the stream in all.
    pub total_bytes: u64,
    /// Whether bytes were dropped because the stream passed its cap.
    pub truncated: bool,
    /// Where in `bytes` the dropped middle was, when `truncated`.
    pub dropped_at: Option<usize>,
}

impl StreamOutput {
    /// The bytes as text; invalid UTF-8 becomes U+FFFD. Never fails.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }

    fn kept(&self) -> Kept {
        let head_end = self.dropped_at.unwrap_or(self.bytes.len());
        let tail_len = (self.bytes.len() - head_end) as u64;
        Kept {
            head_end: head_end as u64,
            tail_start: self.total_bytes - tail_len,
            total: self.total_bytes,
        }
    }

    /// Reads from a stream offset on, without copying; see [`ReadRequest`].
    /// `None` when `offset` is past `total_bytes`.
    pub(crate) fn read(&self, request: &ReadRequest, complete: bool) -> Option<ReadChunk> {
        let kept = self.kept();
        let (start, end, dropped) = kept.plan(request.offset, request.max_bytes)?;
        let from = kept.index(start);
        let bytes = self.bytes.slice(from..from + (end - start) as usize);
        Some(ReadChunk {
            stream: request.stream,
            offset: start,
            bytes,
            next_offset: end,
            dropped,
            total_bytes: self.total_bytes,
            complete,
        })
    }
}

/// A point-in-time view of one handle. Cheap to clone: the output is shared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// The handle's id.
    pub handle_id: HandleId,
    /// The pid the process was given. After the handle is terminal the OS
    /// may reuse it for an unrelated process.
    pub pid: u32,
    /// The command as displayed: the argv joined with spaces, or the shell
    /// string.
    pub command: Arc<str>,
    /// Where the process is in its life.
    pub status: Status,
    /// When the process was started (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When the handle became terminal (UTC); `None` while running.
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// The exit code, when the process exited normally; `None` while running
    /// and when it was ended by a signal.
    pub exit_code: Option<i32>,
    /// The signal that ended the process, when one did (whoever sent it).
    pub signal: Option<i32>,
    /// Captured stdout, so far.
    pub stdout: StreamOutput,
    /// Captured stderr, so far.
    pub stderr: StreamOutput,
    /// Set when procward itself failed while supervising the process (its
    /// process actor died); the process tree was killed. A caller should
    /// treat the output as possibly incomplete.
    pub failure: Option<String>,
    /// The owner key the spawn carried, if any.
    pub owner: Option<Arc<str>>,
    /// The process tree is stopped by a pause (status stays `running`).
    pub paused: bool,
    /// How the process tree is contained.
    #[serde(default)]
    pub containment: Containment,
    /// CPU times and peak memory of the process tree, once terminal (see
    /// [`ResourceUsage`] for where each figure comes from). `None` while
    /// running, and when the process actor failed.
    pub usage: Option<ResourceUsage>,
    /// The handle was evicted to keep the registry under its cap: this is
    /// its receipt. The status, times, exit code, signal and byte totals
    /// are kept; the output bytes are not.
    pub evicted: bool,
}

impl Snapshot {
    /// The snapshot of a process just started: running, no output yet.
    /// Every snapshot procward makes starts here.
    pub(crate) fn started(
        handle_id: HandleId,
        pid: u32,
        command: Arc<str>,
        started_at: OffsetDateTime,
        owner: Option<Arc<str>>,
        containment: Containment,
    ) -> Snapshot {
        Snapshot {
            handle_id,
            pid,
            command,
            status: Status::Running,
            started_at,
            ended_at: None,
            exit_code: None,
            signal: None,
            stdout: StreamOutput::default(),
            stderr: StreamOutput::default(),
            failure: None,
            owner,
            paused: false,
            containment,
            usage: None,
            evicted: false,
        }
    }

    /// A running snapshot for unit tests.
    #[cfg(test)]
    pub(crate) fn running_for_tests() -> Snapshot {
        Snapshot::started(
            HandleId::next(1),
            1,
            "x".into(),
            OffsetDateTime::UNIX_EPOCH,
            None,
            Containment::ProcessGroup,
        )
    }

    /// Whether the process is still live (status `running`).
    pub fn running(&self) -> bool {
        self.status == Status::Running
    }

    /// How long the process ran: from `started_at` to `ended_at`, for a
    /// terminal snapshot or a receipt; `None` while it runs. Both times
    /// come from the registry's [`Clock`](crate::Clock); a clock that went
    /// backwards gives zero.
    pub fn elapsed(&self) -> Option<std::time::Duration> {
        let ended = self.ended_at?;
        Some((ended - self.started_at).try_into().unwrap_or_default())
    }

    /// This snapshot as a receipt: marked evicted, output bytes dropped,
    /// everything else (byte totals included) kept.
    pub(crate) fn into_receipt(mut self) -> Snapshot {
        for stream in [&mut self.stdout, &mut self.stderr] {
            stream.bytes = bytes::Bytes::new();
            stream.dropped_at = None;
            stream.truncated = stream.total_bytes > 0;
        }
        self.evicted = true;
        self
    }

    /// The registry listing line for this snapshot.
    pub fn summary(&self) -> HandleSummary {
        HandleSummary {
            handle_id: self.handle_id,
            pid: self.pid,
            command: self.command.clone(),
            status: self.status,
            started_at: self.started_at,
            owner: self.owner.clone(),
            evicted: self.evicted,
        }
    }

    /// Reads one stream of this snapshot from an offset on, without
    /// copying; `complete` says whether the snapshot is terminal.
    pub fn read(&self, request: &ReadRequest) -> crate::Result<ReadChunk> {
        let output = match request.stream {
            OutputStream::Stdout => &self.stdout,
            OutputStream::Stderr => &self.stderr,
        };
        output
            .read(request, self.status.is_terminal())
            .ok_or(crate::Error::OffsetOutOfRange {
                handle: self.handle_id,
                stream: request.stream.as_str().into(),
                offset: request.offset,
                total: output.total_bytes,
            })
    }
}

/// The answer to a wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WaitOutcome {
    /// The terminal snapshot or, when `timed_out`, a running one.
    pub snapshot: Snapshot,
    /// The wait's own timeout passed first. The process was left running.
    pub timed_out: bool,
}

/// One line of a registry listing: a handle without its output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HandleSummary {
    /// The handle's id.
    pub handle_id: HandleId,
    /// The pid the process was given.
    pub pid: u32,
    /// The command as displayed.
    pub command: Arc<str>,
    /// `running`, or the terminal status.
    pub status: Status,
    /// When the process was started (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// The owner key the spawn carried, if any.
    pub owner: Option<Arc<str>>,
    /// Only a receipt of the handle is left (see [`Snapshot::evicted`]).
    pub evicted: bool,
}

/// How many handles a registry holds, by kind: what
/// [`Registry::counts`](crate::Registry::counts) answers, without building
/// a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandleCounts {
    /// Handles whose process runs.
    pub running: usize,
    /// Handles that are terminal and not yet released, receipts of
    /// evicted handles included (an evicted tree may still be dying).
    pub terminal: usize,
    /// Spawns accepted and still starting: they count against the caps.
    pub starting: usize,
    /// Spawns waiting in the queue for a place (cap policy `Queue`).
    #[serde(default)]
    pub queued: usize,
}

impl HandleCounts {
    /// Every handle a listing would show: running and terminal.
    pub fn handles(&self) -> usize {
        self.running + self.terminal
    }
}

/// Which handles a listing shows. The default shows all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ListFilter {
    /// Only handles spawned with this owner key.
    pub owner: Option<String>,
    /// Only handles with this status.
    pub status: Option<Status>,
}

impl ListFilter {
    /// Only handles spawned with this owner key.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Only handles with this status.
    pub fn status(mut self, status: Status) -> Self {
        self.status = Some(status);
        self
    }

    /// Whether `summary` passes the filter.
    pub fn matches(&self, summary: &HandleSummary) -> bool {
        self.owner
            .as_deref()
            .is_none_or(|owner| summary.owner.as_deref() == Some(owner))
            && self.status.is_none_or(|status| summary.status == status)
    }
}
