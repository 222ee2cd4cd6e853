//! `serve_client`: a short process through `procward serve` from a
//! scripting host's side. `benches/serve_client.py` (Python 3, standard
//! library only) runs `/bin/true` one at a time through the server (spawn,
//! wait, release, each answered before the next is sent; and, where the
//! server supports it, one `spawn` with `"wait": true, "release": true`),
//! and `subprocess.run(["/bin/true"], capture_output=True)` in the same
//! rounds. The server runs with its default flags: cgroup containment
//! where the machine allows it, and once more with `--no-cgroup` (process
//! groups), since the target holds for both.
//!
//! `PROCWARD_SERVE_BIN=path` drives another build of the server.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::Opts;
use crate::harness::{Row, Samples, Target, Unit};

/// Processes per side and round.
const ITERATIONS: usize = 300;

const SERVE: &str = "`procward serve` from Python: spawn + wait + release `/bin/true`, one at a time, default flags";
const ONE_TRIP: &str =
    "`procward serve` from Python: one `spawn` with `wait` + `release`, one at a time";
const SERVE_PG: &str =
    "`procward serve --no-cgroup` from Python: spawn + wait + release `/bin/true`, one at a time";
const ONE_TRIP_PG: &str =
    "`procward serve --no-cgroup` from Python: one `spawn` with `wait` + `release`, one at a time";
const PYTHON: &str = "Python `subprocess.run([\"/bin/true\"], capture_output=True)`";

pub(crate) fn serve_client(opts: &Opts) -> Vec<Row> {
    let mut rows = run(opts, &[], SERVE, ONE_TRIP);
    rows.extend(run(opts, &["--no-cgroup"], SERVE_PG, ONE_TRIP_PG));
    rows
}

/// One run of the client against a server started with `flags`.
fn run(opts: &Opts, flags: &[&str], serve_name: &str, one_trip_name: &str) -> Vec<Row> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/serve_client.py");
    let binary = std::env::var_os("PROCWARD_SERVE_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_procward").into());
    let output = Command::new("python3")
        .arg(&script)
        .arg("--server")
        .arg(&binary)
        .args(["--iterations", &ITERATIONS.to_string()])
        .args(["--rounds", &opts.rounds(8).to_string()])
        // `--flag=...`: argparse takes a separate value starting with
        // `--` for an option of its own.
        .args(flags.iter().map(|flag| format!("--flag={flag}")))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output();
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            eprintln!("  {} failed: {}", script.display(), output.status);
            return not_measured(serve_name, "the Python client failed");
        }
        Err(err) => {
            eprintln!("  python3 could not run: {err}");
            return not_measured(serve_name, "python3 not available");
        }
    };
    let (mut serve, mut python, mut one_trip) =
        (Samples::default(), Samples::default(), Samples::default());
    let mut unavailable = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if value["one_trip"] == false {
            unavailable = Some(value["reason"].as_str().unwrap_or("").to_owned());
        }
        if value.get("round").is_none() {
            continue;
        }
        let rate = |side: &str| value[side].as_f64();
        if let (Some(s), Some(p)) = (rate("serve"), rate("python")) {
            serve.push(s);
            python.push(p);
        }
        if let Some(o) = rate("one_trip") {
            one_trip.push(o);
        }
    }
    let one_trip_row = match unavailable {
        Some(reason) => {
            eprintln!("  the one-round-trip variant is not measured");
            Row::new(one_trip_name, Unit::PerSec, Samples::default())
                .baseline(PYTHON, python.clone())
                .target(Target::None, format!("unavailable: {reason}"))
        }
        None => Row::new(one_trip_name, Unit::PerSec, one_trip)
            .baseline(PYTHON, python.clone())
            .paired()
            .target(Target::Ratio(0.9), "≥ 0.90×"),
    };
    vec![
        Row::new(serve_name, Unit::PerSec, serve)
            .baseline(PYTHON, python)
            .paired()
            .target(Target::Ratio(0.9), "≥ 0.90×"),
        one_trip_row,
    ]
}

fn not_measured(name: &str, why: &str) -> Vec<Row> {
    vec![Row::new(name, Unit::PerSec, Samples::default()).target(Target::None, why)]
}
