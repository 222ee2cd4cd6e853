//! How the server reads its stdin and writes its stdout: a pipe is read in
//! the event loop through a description of its own, so the `O_NONBLOCK`
//! it needs never reaches whoever shares the original (a shell's pipe or
//! terminal); anything that is not a pipe is still served.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

use rustix::fs::{OFlags, fcntl_getfl};
use rustix::pipe::{PipeFlags, pipe_with};
use serde_json::Value;

fn nonblocking(fd: &OwnedFd) -> bool {
    fcntl_getfl(fd)
        .expect("read the descriptor's flags")
        .contains(OFlags::NONBLOCK)
}

#[test]
fn shared_pipes_keep_their_blocking_mode() {
    let (stdin_read, stdin_write) = pipe_with(PipeFlags::CLOEXEC).expect("stdin pipe");
    let (stdout_read, stdout_write) = pipe_with(PipeFlags::CLOEXEC).expect("stdout pipe");
    // Descriptors of the same open descriptions as the server's stdin and
    // stdout, kept here: what a parent sharing them would see.
    let shared_in = stdin_read.try_clone().expect("dup stdin's read end");
    let shared_out = stdout_write.try_clone().expect("dup stdout's write end");
    let mut child = Command::new(env!("CARGO_BIN_EXE_procward"))
        .arg("serve")
        .stdin(Stdio::from(stdin_read))
        .stdout(Stdio::from(stdout_write))
        .spawn()
        .expect("start procward");
    let mut requests = File::from(stdin_write);
    let mut answers = BufReader::new(File::from(stdout_read));
    requests
        .write_all(b"{\"id\":1,\"op\":\"spawn\",\"argv\":[\"echo\",\"hi\"],\"wait\":true,\"release\":true}\n")
        .expect("send a request");
    let mut line = String::new();
    answers.read_line(&mut line).expect("read the answer");
    let answer: Value = serde_json::from_str(&line).expect("an answer in JSON");
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["result"]["stdout"], "hi\n", "{answer}");
    assert!(
        !nonblocking(&shared_in),
        "the server made its shared stdin non-blocking"
    );
    assert!(
        !nonblocking(&shared_out),
        "the server made its shared stdout non-blocking"
    );
    drop(requests);
    // Our copy of stdin's read end keeps no writer alive: the server sees
    // the end of its input and exits.
    assert!(child.wait().expect("wait for procward").success());
}

#[test]
fn files_that_are_not_pipes_are_served_too() {
    let dir = std::env::temp_dir().join(format!("procward-stdio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("make a scratch directory");
    let input = dir.join("requests");
    let output = dir.join("answers");
    std::fs::write(
        &input,
        "{\"id\":1,\"op\":\"spawn\",\"argv\":[\"echo\",\"from a file\"]}\n\
         {\"id\":2,\"op\":\"list\"}\n",
    )
    .expect("write the requests");
    let status = Command::new(env!("CARGO_BIN_EXE_procward"))
        .arg("serve")
        .stdin(File::open(&input).expect("open the requests"))
        .stdout(File::create(&output).expect("create the answers"))
        .status()
        .expect("run procward");
    assert!(status.success());
    let answers = std::fs::read_to_string(&output).expect("read the answers");
    std::fs::remove_dir_all(&dir).expect("remove the scratch directory");
    let answers: Vec<Value> = answers
        .lines()
        .map(|line| serde_json::from_str(line).expect("an answer in JSON"))
        .collect();
    assert_eq!(answers.len(), 2, "{answers:#?}");
    // The input ends at once, so the server may kill the child before it
    // prints: what counts is that the spawn was carried out and answered.
    let spawned = answers
        .iter()
        .find(|a| a["id"] == 1)
        .expect("the spawn's answer");
    assert_eq!(spawned["ok"], true, "{spawned}");
    assert!(spawned["result"]["pid"].as_u64().is_some(), "{spawned}");
    let listed = answers
        .iter()
        .find(|a| a["id"] == 2)
        .expect("the list's answer");
    assert_eq!(listed["ok"], true, "{listed}");
}
