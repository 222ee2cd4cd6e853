//! `procward ctl --socket PATH <command>`: the operator's view of a running
//! `procward serve --socket PATH`, one protocol request (or a few) per
//! command.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

mod client;
mod table;
mod tail;

use client::{Client, CtlError};

/// Arguments of `procward ctl`.
#[derive(Debug, clap::Args)]
pub(crate) struct CtlArgs {
    /// The Unix socket of a running `procward serve --socket PATH`.
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,

    /// Print the protocol's result object as one JSON line instead of
    /// text (see docs/protocol.md). Not for `tail`.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// Every handle, oldest first: handle, pid, owner, status, run time,
    /// exit code or signal, output bytes and the command, cut to the
    /// terminal's width (`COLUMNS`, else the terminal's, else 100).
    List {
        /// Only the handles of this owner.
        #[arg(long)]
        owner: Option<String>,
        /// Only the handles with this status (running, exited, killed,
        /// timed_out).
        #[arg(long)]
        status: Option<String>,
    },
    /// A handle's state now, without its output (`tail` prints that).
    Poll {
        /// The handle id (`psh-…`).
        handle: String,
    },
    /// Wait until the handle ends, then print its state.
    Wait {
        /// The handle id.
        handle: String,
        /// Give up after this long; the process keeps running and the
        /// exit status is still 0.
        #[arg(long, value_name = "MS")]
        timeout_ms: Option<u64>,
    },
    /// Kill the handle's process tree and print how it ended.
    Kill {
        /// The handle id.
        handle: String,
        #[command(flatten)]
        how: KillHow,
    },
    /// Forget the handle (killing its tree first if it runs).
    Release {
        /// The handle id.
        handle: String,
    },
    /// Kill every running process tree of an owner.
    KillOwner {
        /// The owner key.
        owner: String,
        #[command(flatten)]
        how: KillHow,
    },
    /// Start a process that outlives this command, and print its handle.
    Spawn {
        /// Give it this owner key.
        #[arg(long)]
        owner: Option<String>,
        /// Run it in this directory.
        #[arg(long, value_name = "DIR")]
        cwd: Option<PathBuf>,
        /// Kill its tree after this long.
        #[arg(long, value_name = "MS")]
        timeout_ms: Option<u64>,
        /// The program and its arguments, after `--` (no shell).
        #[arg(last = true, required = true, value_name = "ARGV")]
        argv: Vec<String>,
    },
    /// Print the handle's output; with -f, follow it until the process
    /// ends and exit with its exit code (128 + the signal when one ended
    /// it).
    Tail {
        /// Follow the output live until the process ends.
        #[arg(short, long)]
        follow: bool,
        /// The handle id.
        handle: String,
        /// Stderr instead of stdout.
        #[arg(long)]
        stderr: bool,
    },
}

/// `kill` and `kill-owner`: the first signal and the grace before SIGKILL.
#[derive(Debug, clap::Args)]
struct KillHow {
    /// The first signal, by name (TERM, SIGINT) or number; KILL by
    /// default.
    #[arg(long, value_name = "SIGNAL")]
    signal: Option<String>,
    /// After a signal other than KILL, how long to wait before SIGKILL.
    #[arg(long, value_name = "MS")]
    grace_ms: Option<u64>,
}

impl KillHow {
    fn params(&self, mut params: Map<String, Value>) -> Value {
        if let Some(signal) = &self.signal {
            // The protocol takes a number as a number, a name as a string.
            let signal = match signal.parse::<u64>() {
                Ok(number) => json!(number),
                Err(_) => json!(signal),
            };
            params.insert("signal".to_owned(), signal);
        }
        if let Some(grace) = self.grace_ms {
            params.insert("grace_ms".to_owned(), json!(grace));
        }
        Value::Object(params)
    }
}

/// Runs one `ctl` command; errors go to stderr with exit status 1.
pub(crate) fn main(args: CtlArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("procward ctl: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("procward ctl: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: CtlArgs) -> Result<ExitCode, CtlError> {
    if args.json && matches!(args.command, CtlCommand::Tail { .. }) {
        // Not a connection error: clap would say it the same way.
        eprintln!("procward ctl: --json does not apply to tail, which prints the output itself");
        return Ok(ExitCode::from(2));
    }
    let mut client = Client::connect(&args.socket).await?;
    let out = Out { json: args.json };
    match args.command {
        CtlCommand::List { owner, status } => {
            let result = client
                .call(
                    "list",
                    json!({"owner": owner, "status": status, "detail": true}),
                )
                .await?;
            if out.json {
                return out.json_line(&result);
            }
            let handles = result["handles"].as_array().cloned().unwrap_or_default();
            let now = OffsetDateTime::now_utc();
            out.text(&table::render_list(&handles, now, table::terminal_width()))
        }
        CtlCommand::Poll { handle } => {
            let max_bytes = if out.json { Value::Null } else { json!(0) };
            let result = client
                .call("poll", json!({"handle_id": handle, "max_bytes": max_bytes}))
                .await?;
            out.snapshot(&result)
        }
        CtlCommand::Wait { handle, timeout_ms } => {
            let max_bytes = if out.json { Value::Null } else { json!(0) };
            let result = client
                .call(
                    "wait",
                    json!({"handle_id": handle, "timeout_ms": timeout_ms, "max_bytes": max_bytes}),
                )
                .await?;
            out.snapshot(&result)
        }
        CtlCommand::Kill { handle, how } => {
            let params = how.params(Map::from_iter([("handle_id".to_owned(), json!(handle))]));
            let result = client.call("kill", params).await?;
            if out.json {
                return out.json_line(&result);
            }
            out.text(&format!("{}\n", ended(&result)))
        }
        CtlCommand::Release { handle } => {
            let result = client.call("release", json!({"handle_id": handle})).await?;
            if result["released"] != json!(true) {
                return Err(CtlError::UnknownHandle(handle));
            }
            if out.json {
                return out.json_line(&result);
            }
            out.text(&format!("{handle} released\n"))
        }
        CtlCommand::KillOwner { owner, how } => {
            let params = how.params(Map::from_iter([("owner".to_owned(), json!(owner))]));
            let result = client.call("kill_owner", params).await?;
            if out.json {
                return out.json_line(&result);
            }
            let handles = result["handles"].as_array().cloned().unwrap_or_default();
            let mut text: String = handles
                .iter()
                .map(|handle| format!("{}\n", ended(handle)))
                .collect();
            text.push_str(&format!("killed {}\n", handles.len()));
            out.text(&text)
        }
        CtlCommand::Spawn {
            owner,
            cwd,
            timeout_ms,
            argv,
        } => {
            // This connection closes when the command returns; without
            // `outlive_connection` the server would kill the process then.
            let result = client
                .call(
                    "spawn",
                    json!({
                        "argv": argv, "owner": owner, "cwd": cwd,
                        "timeout_ms": timeout_ms, "outlive_connection": true,
                    }),
                )
                .await?;
            if out.json {
                return out.json_line(&result);
            }
            out.text(&format!("{}\n", table_text(&result["handle_id"])))
        }
        CtlCommand::Tail {
            follow,
            handle,
            stderr,
        } => tail::tail(&mut client, &handle, stderr, follow).await,
    }
}

/// Where a command's answer goes: stdout, as text or one JSON line.
struct Out {
    json: bool,
}

impl Out {
    fn text(&self, text: &str) -> Result<ExitCode, CtlError> {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(CtlError::Output)?;
        Ok(ExitCode::SUCCESS)
    }

    fn json_line(&self, result: &Value) -> Result<ExitCode, CtlError> {
        self.text(&format!("{result}\n"))
    }

    /// A snapshot (`poll`, `wait`) as `key  value` lines, or its JSON.
    fn snapshot(&self, result: &Value) -> Result<ExitCode, CtlError> {
        if self.json {
            return self.json_line(result);
        }
        let now = OffsetDateTime::now_utc();
        let mut lines = vec![
            ("handle", table_text(&result["handle_id"])),
            ("status", table::status(result)),
            ("exit", table::end(result)),
            ("pid", result["pid"].to_string()),
            ("owner", table_text(&result["owner"])),
            ("command", table_text(&result["command"])),
            ("started", table_text(&result["started_at"])),
            ("ended", table_text(&result["ended_at"])),
            ("time", table::run_time(result, now)),
            ("stdout", bytes_line(result, "stdout")),
            ("stderr", bytes_line(result, "stderr")),
        ];
        if let Some(failure) = result["failure"].as_str() {
            lines.push(("failure", failure.to_owned()));
        }
        if result["wait_timed_out"] == json!(true) {
            lines.push(("wait", "timed out; the process keeps running".to_owned()));
        }
        let text: String = lines
            .into_iter()
            .map(|(key, value)| format!("{key:<8} {value}\n"))
            .collect();
        self.text(&text)
    }
}

fn table_text(value: &Value) -> String {
    value.as_str().unwrap_or("-").to_owned()
}

fn bytes_line(result: &Value, stream: &str) -> String {
    let total = result[format!("{stream}_total_bytes")]
        .as_u64()
        .unwrap_or(0);
    let truncated = if result[format!("{stream}_truncated")] == json!(true) {
        " (truncated: the middle was dropped)"
    } else {
        ""
    };
    format!("{total} bytes{truncated}")
}

/// One line for a handle that a kill answered: `psh-… killed SIGTERM`.
fn ended(result: &Value) -> String {
    format!(
        "{} {} {}",
        table_text(&result["handle_id"]),
        table_text(&result["status"]),
        table::end(result),
    )
}
