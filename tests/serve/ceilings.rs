//! `procward serve --config`: ceilings on timeouts, output caps, rlimits,
//! nice and umask, and a default or required profile, with real spawns.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::harness::{Server, assert_no_children};

/// A config file for one test, removed when it ends.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "procward-policy-ceilings-{name}-{}.json",
            std::process::id()
        ));
        std::fs::write(&path, text).expect("write the config file");
        ConfigFile(path)
    }

    fn start(&self) -> Server {
        Server::start(&["--config", self.0.to_str().expect("a UTF-8 path")])
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn denied(server: &mut Server, request: Value, rule: &str, says: &str) {
    let error = server.io.fail("spawn", request.clone());
    assert_eq!(error["kind"], "policy_denied", "{request}: {error}");
    assert_eq!(error["rule"], rule, "{request}: {error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{request}: {message}");
}

#[test]
fn a_request_may_only_tighten_the_ceilings() {
    let config = ConfigFile::new(
        "tighten",
        r#"{"policy": {"max_timeout_ms": 300, "max_output_cap": 4096, "max_open_files": 64,
                       "max_core_bytes": 0, "min_nice": 0, "required_umask": 18}}"#,
    );
    let mut server = config.start();
    denied(
        &mut server,
        json!({"argv": ["sleep", "30"], "timeout_ms": 1000}),
        "limit",
        "max_timeout_ms of 300",
    );
    denied(
        &mut server,
        json!({"argv": ["sleep", "30"], "output_cap": 8192}),
        "limit",
        "max_output_cap of 4096",
    );
    // Root asked for -20 before; now nobody gets below the floor.
    denied(
        &mut server,
        json!({"argv": ["sleep", "30"], "limits": {"nice": -20}}),
        "limit",
        "min_nice of 0",
    );
    denied(
        &mut server,
        json!({"argv": ["sleep", "30"], "limits": {"open_files": 1000}}),
        "limit",
        "max_open_files of 64",
    );
    denied(
        &mut server,
        json!({"argv": ["sleep", "30"], "limits": {"umask": 0}}),
        "limit",
        "required_umask",
    );
    assert_eq!(server.io.call("list", json!({}))["handles"], json!([]));

    // What a request leaves out, it gets at the ceiling: the timeout ends
    // the sleep, and the child sees the rlimit and the umask.
    let done = server.io.call(
        "spawn",
        json!({"command": "ulimit -n; ulimit -c; umask; exec sleep 30", "wait": true}),
    );
    assert_eq!(done["status"], "timed_out", "{done}");
    assert_eq!(done["timed_out"], true, "{done}");
    assert_eq!(done["stdout"], "64\n0\n0022\n", "{done}");
    let capped = server.io.call(
        "spawn",
        json!({"command": "head -c 10000 /dev/zero | tr '\\0' x", "wait": true}),
    );
    assert_eq!(capped["stdout_total_bytes"], 10000, "{capped}");
    assert_eq!(
        capped["stdout"].as_str().map(str::len),
        Some(4096),
        "{capped}"
    );

    // A tighter request runs as asked.
    let tight = server.io.call(
        "spawn",
        json!({"command": "ulimit -n; umask", "limits": {"open_files": 32, "umask": 63,
               "nice": 5}, "timeout_ms": 250, "output_cap": 100, "wait": true}),
    );
    assert_eq!(tight["status"], "exited", "{tight}");
    assert_eq!(tight["stdout"], "32\n0077\n", "{tight}");
    assert_no_children(server.pid());
}

#[test]
fn a_default_profile_confines_requests_that_name_none() {
    let config = ConfigFile::new(
        "default",
        r#"{"profiles": {"echo-only": {"allow_programs": ["/bin/echo"]}, "open": {}},
            "default_profile": "echo-only"}"#,
    );
    let mut server = config.start();
    denied(
        &mut server,
        json!({"argv": ["sleep", "30"]}),
        "program",
        "sleep",
    );
    let done = server
        .io
        .call("spawn", json!({"argv": ["echo", "ok"], "wait": true}));
    assert_eq!(done["stdout"], "ok\n", "{done}");
    // Naming another profile is still the request's choice.
    let other = server.io.call(
        "spawn",
        json!({"argv": ["sh", "-c", "echo sh"], "sandbox_profile": "open", "wait": true}),
    );
    assert_eq!(other["stdout"], "sh\n", "{other}");
    assert_no_children(server.pid());
}

#[test]
fn a_required_profile_denies_requests_that_name_none() {
    let config = ConfigFile::new(
        "required",
        r#"{"profiles": {"open": {}}, "require_profile": true}"#,
    );
    let mut server = config.start();
    denied(
        &mut server,
        json!({"argv": ["echo", "x"]}),
        "profile",
        "requires a sandbox_profile",
    );
    let done = server.io.call(
        "spawn",
        json!({"argv": ["echo", "ok"], "sandbox_profile": "open", "wait": true}),
    );
    assert_eq!(done["stdout"], "ok\n", "{done}");
    assert_no_children(server.pid());
}

#[test]
fn a_profile_cannot_loosen_the_base_ceilings() {
    let config = ConfigFile::new(
        "merge",
        r#"{"policy": {"max_timeout_ms": 60000, "max_open_files": 64},
            "profiles": {"short": {"max_timeout_ms": 200, "max_open_files": 4096}}}"#,
    );
    let mut server = config.start();
    denied(
        &mut server,
        json!({"argv": ["sleep", "30"], "sandbox_profile": "short", "timeout_ms": 5000}),
        "limit",
        "max_timeout_ms of 200",
    );
    denied(
        &mut server,
        json!({"argv": ["sleep", "30"], "sandbox_profile": "short",
               "limits": {"open_files": 100}}),
        "limit",
        "max_open_files of 64",
    );
    // Left out, the profile's tighter timeout applies.
    let done = server.io.call(
        "spawn",
        json!({"argv": ["sleep", "30"], "sandbox_profile": "short", "wait": true}),
    );
    assert_eq!(done["status"], "timed_out", "{done}");
    // Without the profile, the base ceilings.
    let base = server.io.call(
        "spawn",
        json!({"argv": ["sleep", "30"], "timeout_ms": 5000}),
    );
    server
        .io
        .call("kill", json!({"handle_id": base["handle_id"]}));
    assert_no_children(server.pid());
}

#[test]
fn bad_ceilings_and_default_profiles_stop_the_server() {
    for (name, text, says) in [
        ("nice", r#"{"policy": {"min_nice": -40}}"#, "min_nice -40"),
        (
            "umask",
            r#"{"policy": {"required_umask": 4096}}"#,
            "required_umask",
        ),
        (
            "noprofile",
            r#"{"default_profile": "nope"}"#,
            "\"nope\" is not one of",
        ),
    ] {
        let config = ConfigFile::new(name, text);
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_procward"))
            .args(["serve", "--config"])
            .arg(&config.0)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run procward");
        assert!(!output.status.success(), "{text}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{text}: {stderr}");
    }
}
