//! `spawn`: start a process from `argv` or a shell `command`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::Value;

use crate::json::answer::Answer;
use crate::json::dispatcher::Dispatcher;
use crate::json::encoding::decode_bytes;
use crate::json::error::{JsonError, quoted};
use crate::json::params::Params;
use crate::messages::{HandleId, Limits, Snapshot, SpawnRequest, Stdin, WaitOutcome};

/// The parameters `spawn` reads; any other is refused.
const PARAMS: &[&str] = &[
    "argv",
    "command",
    "mode",
    "cwd",
    "env",
    "clear_env",
    "timeout",
    "timeout_ms",
    "output_cap",
    "owner",
    "sandbox_profile",
    "stdin",
    "limits",
    "outlive_connection",
    "wait",
    "wait_timeout_ms",
    "release",
];

/// The keys of `limits`, as [`Limits`] names its fields; any other is
/// refused.
const LIMITS: &[&str] = &[
    "cpu_seconds",
    "address_space_bytes",
    "open_files",
    "max_processes",
    "core_bytes",
    "nice",
    "umask",
    "new_session",
    "memory_max",
    "pids_max",
    "cpu_max",
];

/// A parsed `spawn` request.
#[derive(Debug)]
pub(crate) struct SpawnParams {
    pub(crate) request: SpawnRequest,
    /// Keep the process running when the connection that spawned it closes
    /// (socket mode only).
    pub(crate) outlive_connection: bool,
    /// Answer only once the process is terminal (`wait`).
    pub(crate) wait: Option<WaitFor>,
}

/// How a spawn with `wait` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaitFor {
    /// `wait_timeout_ms`: answer with the running snapshot after this long
    /// (the process keeps running); `None` waits for ever.
    pub(crate) timeout: Option<Duration>,
    /// `release`: forget the handle once its terminal answer is made.
    pub(crate) release: bool,
}

pub(crate) async fn run(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Answer, JsonError> {
    let started = start(dispatcher, params)?;
    // Boxed: its future is more than twice the size of any other op's, and
    // every request's task would pay for it.
    Box::pin(finish(dispatcher, started)).await
}

/// A spawn sent to the registry, its answer still to come.
pub(crate) struct Started {
    answer: Pin<Box<dyn Future<Output = crate::Result<Snapshot>> + Send>>,
    outlive_connection: bool,
    wait: Option<WaitFor>,
}

/// Checks the request and sends it to the registry before returning: the
/// server calls this in the order it reads its lines, so that a
/// `kill_owner` read after a spawn reaches the registry after it too.
pub(crate) fn start(dispatcher: &Dispatcher, params: Params<'_>) -> Result<Started, JsonError> {
    params.only("spawn", PARAMS)?;
    let SpawnParams {
        request,
        outlive_connection,
        wait,
    } = parse(params)?;
    if let Some(cap) = request.output_cap
        && cap > dispatcher.max_output_cap()
    {
        return Err(JsonError::invalid(format!(
            "`output_cap` {cap} is above the server's ceiling of {} bytes (--max-output-cap)",
            dispatcher.max_output_cap()
        )));
    }
    let request = dispatcher.bind_owner(request);
    Ok(Started {
        answer: Box::pin(dispatcher.registry().send_spawn(request)),
        outlive_connection,
        wait,
    })
}

/// Awaits a started spawn's answer, and with `wait`, its end.
pub(crate) async fn finish(dispatcher: &Dispatcher, started: Started) -> Result<Answer, JsonError> {
    let Started {
        answer,
        outlive_connection,
        wait,
    } = started;
    let registry = dispatcher.registry();
    let snapshot = answer.await?;
    let id = snapshot.handle_id;
    if !outlive_connection {
        dispatcher.track(id).await;
    }
    let Some(wait) = wait else {
        return Ok(Answer::Spawned(snapshot));
    };
    let outcome = tokio::select! {
        biased;
        outcome = registry.wait(id, wait.timeout) => outcome?,
        () = dispatcher.input_closed() => at_close(dispatcher, id, outlive_connection).await?,
    };
    if wait.release && !outcome.timed_out {
        // The answer carries the terminal snapshot already; a registry
        // that stopped meanwhile has forgotten the handle anyway.
        if let Err(err) = registry.release(id).await {
            tracing::debug!(handle = %id, %err, "release after a spawn with wait failed");
        }
        dispatcher.untrack(id);
    }
    Ok(Answer::Waited(outcome, dispatcher.default_output_limit()))
}

/// The answer of a spawn still waiting when its stream stops being read.
/// The server finishes spawns before it kills what the close concerns, so
/// the spawn does it for its own process (which that kill would reach
/// anyway) and answers with the terminal snapshot. A process asked to
/// outlive the connection is left running and answered as a wait that
/// timed out.
async fn at_close(
    dispatcher: &Dispatcher,
    id: HandleId,
    outlive_connection: bool,
) -> Result<WaitOutcome, JsonError> {
    let registry = dispatcher.registry();
    if outlive_connection {
        let snapshot = registry.poll(id).await?;
        let timed_out = snapshot.running();
        return Ok(WaitOutcome {
            snapshot,
            timed_out,
        });
    }
    let snapshot = registry.kill(id, dispatcher.close_kill()).await?;
    Ok(WaitOutcome {
        snapshot,
        timed_out: false,
    })
}

pub(crate) fn parse(params: Params<'_>) -> Result<SpawnParams, JsonError> {
    let argv = params.strings("argv")?;
    let command = params.str("command")?;
    let mut request = match (params.str("mode")?, argv, command) {
        (Some("argv") | None, Some(argv), None) => SpawnRequest::argv(argv),
        (Some("shell") | None, None, Some(line)) => SpawnRequest::shell(line),
        (_, Some(_), Some(_)) => {
            return Err(JsonError::invalid("give `argv` or `command`, not both"));
        }
        (None, None, None) => {
            return Err(JsonError::invalid(
                "missing `argv` (an array of strings) or `command` (a shell command line)",
            ));
        }
        (Some("argv"), None, _) => {
            return Err(JsonError::invalid(
                "`mode` \"argv\" needs `argv` (an array of strings)",
            ));
        }
        (Some("shell"), _, None) => {
            return Err(JsonError::invalid(
                "`mode` \"shell\" needs `command` (a shell command line)",
            ));
        }
        (Some(other), _, _) => {
            return Err(JsonError::invalid(format!(
                "`mode` must be \"argv\" or \"shell\", got {}",
                quoted(other)
            )));
        }
    };
    if let Some(cwd) = params.str("cwd")? {
        request = request.cwd(cwd);
    }
    for (key, value) in params.string_map("env")?.unwrap_or_default() {
        request = request.env(key, value);
    }
    if params.bool("clear_env")?.unwrap_or(false) {
        request = request.clear_env();
    }
    if let Some(timeout) = params.millis_either("timeout", "timeout_ms")? {
        request = request.timeout(timeout);
    }
    if let Some(cap) = params.count("output_cap")? {
        let cap = usize::try_from(cap)
            .map_err(|_| JsonError::invalid(format!("`output_cap` is too large, got {cap}")))?;
        request = request.output_cap(cap);
    }
    if let Some(owner) = params.str("owner")? {
        request = request.owner(owner);
    }
    if let Some(profile) = params.str("sandbox_profile")? {
        request = request.sandbox_profile(profile);
    }
    if let Some(stdin) = params.get("stdin") {
        request = request.stdin(parse_stdin(stdin)?);
    }
    if let Some(limits) = params.get("limits") {
        if let Value::Object(keys) = limits {
            Params(keys).only("limits", LIMITS)?;
        }
        let limits = serde_json::from_value::<Limits>(limits.clone())
            .map_err(|err| JsonError::invalid(format!("`limits`: {err}")))?;
        request = request.limits(limits);
    }
    let outlive_connection = params.bool("outlive_connection")?.unwrap_or(false);
    let wait = parse_wait(params)?;
    // Reject what the registry would reject (empty argv, NUL bytes, ...)
    // before asking it.
    request.validate()?;
    Ok(SpawnParams {
        request,
        outlive_connection,
        wait,
    })
}

/// `wait`, `wait_timeout_ms` and `release`; the last two only with `wait`.
fn parse_wait(params: Params<'_>) -> Result<Option<WaitFor>, JsonError> {
    let timeout = params.count("wait_timeout_ms")?;
    let release = params.bool("release")?.unwrap_or(false);
    if !params.bool("wait")?.unwrap_or(false) {
        if release {
            return Err(JsonError::invalid(
                "`release` needs `wait`: only a spawn that answers when the process is \
                 terminal can forget its handle",
            ));
        }
        if timeout.is_some() {
            return Err(JsonError::invalid("`wait_timeout_ms` needs `wait`"));
        }
        return Ok(None);
    }
    Ok(Some(WaitFor {
        timeout: timeout.filter(|ms| *ms > 0).map(Duration::from_millis),
        release,
    }))
}

/// `stdin`: `"null"` (the default), `"pipe"` (open for `write` and
/// `close_stdin`), or bytes given at spawn as `{"text": ...}` or
/// `{"base64": ...}`, then end of file.
fn parse_stdin(value: &Value) -> Result<Stdin, JsonError> {
    match value {
        Value::String(mode) if mode == "null" => Ok(Stdin::Null),
        Value::String(mode) if mode == "pipe" => Ok(Stdin::Pipe),
        Value::Object(_) => Ok(Stdin::Bytes(decode_bytes("stdin", value)?.into())),
        _ => Err(JsonError::invalid(
            "`stdin` must be \"null\", \"pipe\", {\"text\": string} or {\"base64\": string}",
        )),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, json};

    use super::*;
    use crate::json::ErrorKind;
    use crate::messages::Command;

    fn parse_json(value: Value) -> Result<SpawnParams, JsonError> {
        let Value::Object(map) = value else {
            panic!("not an object")
        };
        parse(Params(&map))
    }

    fn invalid(value: Value) -> String {
        let err = parse_json(value).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
        err.to_string()
    }

    #[test]
    fn argv_and_command_pick_the_mode() {
        let argv = parse_json(json!({"argv": ["echo", "hi"]})).unwrap();
        assert_eq!(
            argv.request.command,
            Command::Argv(vec!["echo".into(), "hi".into()])
        );
        let shell = parse_json(json!({"command": "echo $HOME", "mode": "shell"})).unwrap();
        assert_eq!(shell.request.command, Command::Shell("echo $HOME".into()));
        assert!(!shell.outlive_connection);
    }

    #[test]
    fn options_reach_the_request() {
        let parsed = parse_json(json!({
            "argv": ["true"], "cwd": "/tmp", "env": {"A": "1"}, "clear_env": true,
            "timeout": 1500, "output_cap": 4096, "outlive_connection": true, "owner": "job-7",
            "sandbox_profile": "ci",
        }))
        .unwrap();
        let req = parsed.request;
        assert_eq!(req.cwd.as_deref(), Some(std::path::Path::new("/tmp")));
        assert_eq!(req.env, vec![("A".to_owned(), "1".to_owned())]);
        assert!(req.clear_env);
        assert_eq!(req.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(req.output_cap, Some(4096));
        assert!(parsed.outlive_connection);
        assert_eq!(req.owner.as_deref(), Some("job-7"));
        assert_eq!(req.sandbox_profile.as_deref(), Some("ci"));
    }

    #[test]
    fn stdin_modes_and_bytes() {
        let stdin = |value: Value| {
            parse_json(json!({"command": "cat", "stdin": value}))
                .unwrap()
                .request
                .stdin
        };
        assert_eq!(stdin(json!("pipe")), Stdin::Pipe);
        assert_eq!(stdin(json!("null")), Stdin::Null);
        assert_eq!(stdin(json!({"text": "hi"})), Stdin::Bytes("hi".into()));
        assert_eq!(stdin(json!({"base64": "aGk="})), Stdin::Bytes("hi".into()));
    }

    #[test]
    fn limits_reach_the_request() {
        let req = parse_json(json!({
            "argv": ["true"],
            "limits": {"cpu_seconds": 2, "open_files": 64, "nice": 5, "umask": 18, "new_session": true},
        }))
        .unwrap()
        .request;
        assert_eq!(req.limits.cpu_seconds, Some(2));
        assert_eq!(req.limits.open_files, Some(64));
        assert_eq!(req.limits.nice, Some(5));
        assert_eq!(req.limits.umask, Some(18));
        assert!(req.limits.new_session);
        assert!(
            invalid(json!({"argv": ["true"], "limits": {"cpu_seconds": -1}})).contains("limits")
        );
        assert!(invalid(json!({"argv": ["true"], "limits": {"nice": 40}})).contains("nice"));
        assert!(invalid(json!({"argv": ["true"], "limits": "x"})).contains("limits"));
    }

    #[test]
    fn wait_and_release() {
        let parsed = parse_json(json!({"argv": ["true"], "wait": true, "release": true}));
        assert_eq!(
            parsed.unwrap().wait,
            Some(WaitFor {
                timeout: None,
                release: true
            })
        );
        let parsed = parse_json(json!({"argv": ["true"], "wait": true, "wait_timeout_ms": 50}));
        assert_eq!(
            parsed.unwrap().wait.and_then(|wait| wait.timeout),
            Some(Duration::from_millis(50))
        );
        assert_eq!(
            parse_json(json!({"argv": ["true"], "wait": false}))
                .unwrap()
                .wait,
            None
        );
        assert!(
            invalid(json!({"argv": ["true"], "release": true})).contains("`release` needs `wait`")
        );
        assert!(invalid(json!({"argv": ["true"], "wait_timeout_ms": 5})).contains("needs `wait`"));
        assert!(invalid(json!({"argv": ["true"], "wait": "yes"})).contains("`wait`"));
    }

    #[test]
    fn unknown_limits_are_named() {
        let err = invalid(json!({"argv": ["true"], "limits": {"cpu_secs": 1, "max_procs": 5}}));
        assert!(
            err.contains("unknown parameter \"cpu_secs\" of `limits`"),
            "{err}"
        );
    }

    #[test]
    fn a_zero_timeout_means_none() {
        let parsed = parse_json(json!({"argv": ["true"], "timeout_ms": 0})).unwrap();
        assert_eq!(parsed.request.timeout, None);
    }

    #[test]
    fn bad_requests_name_the_problem() {
        assert!(invalid(json!({})).contains("missing `argv`"));
        assert!(invalid(json!({"argv": []})).contains("argv is empty"));
        assert!(invalid(json!({"argv": "echo hi"})).contains("`argv` must be an array of strings"));
        assert!(invalid(json!({"argv": ["a"], "command": "b"})).contains("not both"));
        assert!(invalid(json!({"mode": "argv", "command": "b"})).contains("needs `argv`"));
        assert!(invalid(json!({"mode": "shell", "argv": ["b"]})).contains("needs `command`"));
        assert!(invalid(json!({"mode": "exec", "argv": ["b"]})).contains("\"exec\""));
        assert!(invalid(json!({"argv": ["a\u{0}b"]})).contains("NUL"));
        assert!(invalid(json!({"command": "x", "timeout": -1})).contains("negative"));
        assert!(invalid(json!({"command": "x", "timeout": "5"})).contains("`timeout`"));
        assert!(invalid(json!({"command": "x", "env": {"A": 1}})).contains("`env.A`"));
        assert!(invalid(json!({"command": "x", "owner": 5})).contains("`owner` must be a string"));
        assert!(invalid(json!({"command": "x", "stdin": "hello"})).contains("`stdin` must be"));
        assert!(
            invalid(json!({"command": "x", "stdin": {"base64": "%"}})).contains("stdin.base64")
        );
        assert!(invalid(json!({"command": "x", "output_cap": 0})).contains("output_cap"));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(".{0,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever the parameters, parsing answers (never panics), and
        /// whatever it accepts the registry would accept.
        #[test]
        fn parsing_never_panics(
            entries in prop::collection::btree_map(
                prop_oneof![
                    Just("argv".to_owned()), Just("command".to_owned()),
                    Just("mode".to_owned()), Just("cwd".to_owned()),
                    Just("env".to_owned()), Just("timeout".to_owned()),
                    Just("timeout_ms".to_owned()), Just("output_cap".to_owned()),
                    Just("clear_env".to_owned()), ".{0,6}",
                ],
                json_value(),
                0..6,
            )
        ) {
            let map: Map<String, Value> = entries.into_iter().collect();
            if let Ok(parsed) = parse(Params(&map)) {
                prop_assert!(parsed.request.validate().is_ok());
            }
        }
    }
}
