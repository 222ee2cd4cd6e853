//! `procward serve --config`: the default policy and named profiles.

use serde_json::json;

use crate::harness::{Server, assert_no_children};

fn config_file(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "procward-serve-policy-{}-{}.json",
        std::process::id(),
        text.len()
    ));
    std::fs::write(&path, text).expect("write the config file");
    path
}

#[test]
fn profiles_gate_spawns_and_unknown_names_are_denied() {
    let path = config_file(
        r#"{"policy": {"deny_programs": ["/usr/bin/yes"]},
            "profiles": {"echo-only": {"allow_programs": ["/bin/echo"], "allow_shell": false}}}"#,
    );
    let path_text = path.to_string_lossy().into_owned();
    let mut server = Server::start(&["--config", &path_text]);

    let allowed = server.io.call(
        "spawn",
        json!({"argv": ["echo", "ok"], "sandbox_profile": "echo-only"}),
    );
    let done = server
        .io
        .call("wait", json!({"handle_id": allowed["handle_id"]}));
    assert_eq!(done["stdout"], "ok\n");

    for (request, says, rule) in [
        (
            json!({"argv": ["cat"], "sandbox_profile": "echo-only"}),
            "allowlist",
            "program",
        ),
        (
            json!({"command": "echo x", "sandbox_profile": "echo-only"}),
            "shell",
            "shell",
        ),
        (
            json!({"argv": ["echo"], "sandbox_profile": "no-such-profile"}),
            "unknown sandbox profile",
            "profile",
        ),
        (json!({"argv": ["yes"]}), "yes", "program"),
    ] {
        let error = server.io.fail("spawn", request.clone());
        assert_eq!(error["kind"], "policy_denied", "{request}: {error}");
        assert_eq!(error["rule"], rule, "{request}: {error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{request}: {message}");
    }
    assert_no_children(server.pid());
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_bad_config_file_stops_the_server_with_a_clear_error() {
    let path = config_file(r#"{"profiles": {"x": {"allow_progams": []}}}"#);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_procward"))
        .args(["serve", "--config"])
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run procward");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("allow_progams"), "{stderr}");
    let _ = std::fs::remove_file(path);
}
