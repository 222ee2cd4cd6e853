//! What to start: [`SpawnRequest`] and its validation.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{CapPolicy, Limits, Signal, Stdin, SubscribeRequest};
use crate::error::Error;

/// The shell that runs [`Command::Shell`] commands.
pub const SHELL: &str = "/bin/sh";

/// The program to run: an argv, or a shell command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Run `argv[0]` (looked up in `PATH` if it has no `/`) with the rest as
    /// its arguments. No shell is involved, so nothing is expanded.
    Argv(Vec<String>),
    /// Run the string with `/bin/sh -c`.
    Shell(String),
}

impl Command {
    /// The command as displayed in snapshots: the argv joined with spaces,
    /// or the shell string.
    pub fn display(&self) -> String {
        match self {
            Command::Argv(argv) => argv.join(" "),
            Command::Shell(line) => line.clone(),
        }
    }

    /// The program the OS is asked to execute.
    pub fn program(&self) -> &str {
        match self {
            Command::Argv(argv) => argv.first().map(String::as_str).unwrap_or(""),
            Command::Shell(_) => SHELL,
        }
    }
}

/// A request to start one process.
///
/// Build it with [`SpawnRequest::argv`] or [`SpawnRequest::shell`] and the
/// builder methods. stdin is `/dev/null` unless [`stdin`](Self::stdin) says
/// otherwise; stdout and stderr are captured. The process is started in a new process group of its own, so
/// that a kill reaches its whole tree.
///
/// ```
/// use std::time::Duration;
/// use procward::SpawnRequest;
///
/// let req = SpawnRequest::shell("echo $GREETING")
///     .env("GREETING", "hi")
///     .timeout(Duration::from_secs(5));
/// assert!(req.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SpawnRequest {
    /// What to run.
    pub command: Command,
    /// Working directory; the registry's own when `None`.
    pub cwd: Option<PathBuf>,
    /// Variables to set, in order (a later one wins).
    pub env: Vec<(String, String)>,
    /// Start from an empty environment instead of inheriting ours.
    pub clear_env: bool,
    /// Kill the process tree if it is not terminal after this long; its
    /// status is then `timed_out`. The time covers the output drain.
    pub timeout: Option<Duration>,
    /// Per-stream capture cap in bytes; the registry's default when `None`.
    pub output_cap: Option<usize>,
    /// What the child reads on stdin.
    pub stdin: Stdin,
    /// A key naming who the process belongs to (a script, a session, a
    /// connection): handles can be listed, killed and released by owner,
    /// and at the cap a spawn evicts its own owner's handles first.
    pub owner: Option<String>,
    /// The name of a policy profile of the registry to apply (see
    /// [`RegistryConfig::profiles`](crate::RegistryConfig::profiles)).
    pub sandbox_profile: Option<String>,
    /// rlimits, nice value, umask and session, applied in the child.
    pub limits: Limits,
    /// What this spawn does when the registry is full of running handles;
    /// the registry's [`cap_policy`](crate::RegistryConfig::cap_policy)
    /// when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_policy: Option<CapPolicy>,
    /// Subscriptions attached before the child's output is read: each gets
    /// every byte from offset 0, then exactly one exit event (with the
    /// usual window and [`Missed`](super::OutputEvent::Missed) rules). Their
    /// `from` is ignored. Not serialized: a channel or an actor reference
    /// does not cross machines, so a request that crossed one has none.
    #[serde(skip)]
    pub subscribers: Vec<SubscribeRequest>,
}

impl SpawnRequest {
    /// The `PATH` the child will have: the last one the request sets;
    /// none if it clears its environment without setting one; else ours.
    pub(crate) fn child_path(&self) -> Option<std::ffi::OsString> {
        match self.env.iter().rev().find(|(key, _)| key == "PATH") {
            Some((_, value)) => Some(value.into()),
            None if self.clear_env => None,
            None => std::env::var_os("PATH"),
        }
    }

    /// Runs `argv[0]` with `argv[1..]` as arguments, without a shell.
    pub fn argv<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(Command::Argv(argv.into_iter().map(Into::into).collect()))
    }

    /// Runs `line` with `/bin/sh -c`.
    pub fn shell(line: impl Into<String>) -> Self {
        Self::new(Command::Shell(line.into()))
    }

    fn new(command: Command) -> Self {
        SpawnRequest {
            command,
            cwd: None,
            env: Vec::new(),
            clear_env: false,
            timeout: None,
            output_cap: None,
            stdin: Stdin::Null,
            owner: None,
            sandbox_profile: None,
            limits: Limits::default(),
            cap_policy: None,
            subscribers: Vec::new(),
        }
    }

    /// Sets the working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets one environment variable (added to the inherited environment
    /// unless [`clear_env`](Self::clear_env) is used).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Starts from an empty environment: only the variables set with
    /// [`env`](Self::env) are passed.
    pub fn clear_env(mut self) -> Self {
        self.clear_env = true;
        self
    }

    /// Kills the process tree when it runs longer than `timeout` (must be
    /// more than zero).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Caps each captured stream at `bytes` (see the crate docs on capture).
    pub fn output_cap(mut self, bytes: usize) -> Self {
        self.output_cap = Some(bytes);
        self
    }

    /// Sets the limits applied in the child.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Asks for a named policy profile of the registry.
    pub fn sandbox_profile(mut self, name: impl Into<String>) -> Self {
        self.sandbox_profile = Some(name.into());
        self
    }

    /// Sets the owner key.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Sets this spawn's [`cap_policy`](Self::cap_policy).
    pub fn cap_policy(mut self, policy: CapPolicy) -> Self {
        self.cap_policy = Some(policy);
        self
    }

    /// Attaches a subscription before the child's output is read, so it
    /// gets every byte from offset 0 (see [`subscribers`](Self::subscribers)).
    /// Pass a [`Subscriber`](super::Subscriber), or a
    /// [`SubscribeRequest`] to give it a tag.
    pub fn subscribe(mut self, subscription: impl Into<SubscribeRequest>) -> Self {
        self.subscribers.push(subscription.into());
        self
    }

    /// Sets what the child reads on stdin.
    pub fn stdin(mut self, stdin: Stdin) -> Self {
        self.stdin = stdin;
        self
    }

    /// The command as displayed in snapshots.
    pub fn display(&self) -> String {
        self.command.display()
    }

    /// Checks the request without starting anything: a non-empty argv and
    /// program, no NUL byte anywhere, environment names that are non-empty
    /// and have no `=`, and a timeout above zero.
    ///
    /// The registry calls this before every spawn; it is public so that a
    /// caller can reject input early.
    pub fn validate(&self) -> Result<(), Error> {
        match &self.command {
            Command::Argv(argv) => {
                let Some(program) = argv.first() else {
                    return Err(Error::invalid("argv is empty"));
                };
                if program.is_empty() {
                    return Err(Error::invalid("argv[0] (the program) is empty"));
                }
                for (i, arg) in argv.iter().enumerate() {
                    no_nul(arg, || format!("argv[{i}]"))?;
                }
            }
            Command::Shell(line) => {
                if line.trim().is_empty() {
                    return Err(Error::invalid("the shell command is empty"));
                }
                no_nul(line, || "the shell command".to_owned())?;
            }
        }
        if let Some(cwd) = &self.cwd {
            if cwd.as_os_str().is_empty() {
                return Err(Error::invalid("cwd is empty"));
            }
            if cwd.as_os_str().as_encoded_bytes().contains(&0) {
                return Err(Error::invalid("cwd contains a NUL byte"));
            }
        }
        for (key, value) in &self.env {
            if key.is_empty() {
                return Err(Error::invalid("an environment variable has an empty name"));
            }
            if key.contains('=') {
                return Err(Error::invalid(format!(
                    "environment variable name {key:?} contains `=`"
                )));
            }
            no_nul(key, || format!("environment variable name {key:?}"))?;
            no_nul(value, || {
                format!("the value of environment variable {key:?}")
            })?;
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(Error::invalid("timeout must be more than zero"));
        }
        if self.output_cap == Some(0) {
            return Err(Error::invalid("output_cap must be more than zero"));
        }
        self.limits.validate()
    }
}

fn no_nul(text: &str, what: impl FnOnce() -> String) -> Result<(), Error> {
    if text.contains('\0') {
        return Err(Error::invalid(format!("{} contains a NUL byte", what())));
    }
    Ok(())
}

/// How to kill a process tree.
///
/// The signal goes to the process group of the spawned process, so it
/// reaches every descendant that stayed in that group. With a `grace`, the
/// group gets `signal` first and `SIGKILL` when the process has not ended
/// after `grace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KillRequest {
    /// The signal to send first (`SIGKILL` by default).
    pub signal: Signal,
    /// How long to wait after `signal` before sending `SIGKILL`. Ignored
    /// when `signal` is `SIGKILL`.
    pub grace: Option<Duration>,
}

impl Default for KillRequest {
    fn default() -> Self {
        KillRequest {
            signal: Signal::KILL,
            grace: None,
        }
    }
}

impl KillRequest {
    /// Send this signal first (see [`Signal::TERM`], [`Signal::KILL`]).
    pub fn signal(mut self, signal: Signal) -> Self {
        self.signal = signal;
        self
    }

    /// Wait this long after the first signal before `SIGKILL`.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// `SIGTERM` first, then `SIGKILL` after `grace` if the process is
    /// still running.
    pub fn terminate(grace: Duration) -> Self {
        KillRequest {
            signal: Signal::TERM,
            grace: Some(grace),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(req: &SpawnRequest) -> String {
        match req.validate() {
            Err(Error::InvalidRequest { reason }) => reason,
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
    }

    #[test]
    fn accepts_plain_requests() {
        assert!(SpawnRequest::argv(["true"]).validate().is_ok());
        assert!(
            SpawnRequest::shell("echo hi")
                .env("A", "b")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn rejects_empty_commands() {
        assert!(reason(&SpawnRequest::argv(Vec::<String>::new())).contains("argv is empty"));
        assert!(reason(&SpawnRequest::argv([""])).contains("argv[0]"));
        assert!(reason(&SpawnRequest::shell("  ")).contains("shell command is empty"));
    }

    #[test]
    fn rejects_nul_bytes_naming_the_field() {
        assert!(reason(&SpawnRequest::argv(["echo", "a\0b"])).contains("argv[1]"));
        assert!(reason(&SpawnRequest::shell("echo \0")).contains("shell command"));
        assert!(reason(&SpawnRequest::argv(["true"]).env("K", "v\0")).contains("\"K\""));
        assert!(reason(&SpawnRequest::argv(["true"]).cwd("/tm\0p")).contains("cwd"));
    }

    #[test]
    fn rejects_bad_env_names_and_zero_limits() {
        assert!(reason(&SpawnRequest::argv(["true"]).env("A=B", "v")).contains("`=`"));
        assert!(reason(&SpawnRequest::argv(["true"]).env("", "v")).contains("empty name"));
        let zero = SpawnRequest::argv(["true"]).timeout(Duration::ZERO);
        assert!(reason(&zero).contains("timeout"));
        assert!(reason(&SpawnRequest::argv(["true"]).output_cap(0)).contains("output_cap"));
    }

    #[test]
    fn displays_the_command() {
        assert_eq!(SpawnRequest::argv(["echo", "a", "b"]).display(), "echo a b");
        assert_eq!(
            SpawnRequest::shell("sleep 1; echo x").display(),
            "sleep 1; echo x"
        );
    }
}
