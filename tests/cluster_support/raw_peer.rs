//! A peer that speaks ractor_cluster's handshake by hand, for the
//! `cluster::unauthenticated` tests: frames (an 8-byte big-endian length,
//! then protobuf) written byte by byte, with no ractor_cluster behind
//! them. Also the node's resident memory, from /proc.
#![allow(dead_code, clippy::unwrap_used)]

use std::fs;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::nodes::DEADLINE;

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A length-delimited protobuf field.
fn bytes_field(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn varint_field(field: u64, value: u64, out: &mut Vec<u8>) {
    varint(field << 3, out);
    varint(value, out);
}

/// A frame around `body`.
pub(crate) fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u64).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// `NetworkMessage { auth: AuthenticationMessage { <field>: inner } }`,
/// framed.
fn auth_frame(field: u64, inner: &[u8]) -> Vec<u8> {
    let mut auth = Vec::new();
    bytes_field(field, inner, &mut auth);
    let mut network = Vec::new();
    bytes_field(1, &auth, &mut network);
    frame(&network)
}

/// The first message of a client: its name (`name@host`).
pub(crate) fn name_claim(full_name: &str) -> Vec<u8> {
    let mut flags = Vec::new();
    varint_field(1, 1, &mut flags);
    let mut name = Vec::new();
    bytes_field(1, full_name.as_bytes(), &mut name);
    bytes_field(2, &flags, &mut name);
    bytes_field(3, b"127.0.0.1:1", &mut name);
    varint_field(4, 7, &mut name);
    auth_frame(1, &name)
}

/// A client's answer to the server's challenge, with `digest`.
pub(crate) fn challenge_reply(digest: &[u8]) -> Vec<u8> {
    let mut reply = Vec::new();
    varint_field(1, 42, &mut reply);
    bytes_field(2, digest, &mut reply);
    auth_frame(5, &reply)
}

/// Claims `full_name`, answers with an all-zero digest without reading
/// the challenge, and reads until the node closes the connection; returns
/// whether it did before the deadline.
pub(crate) async fn claim_and_fail<S>(mut stream: S, full_name: &str) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // A node that closes early makes later writes fail; that is fine.
    let _ = stream.write_all(&name_claim(full_name)).await;
    let _ = stream.write_all(&challenge_reply(&[0; 32])).await;
    let _ = stream.flush().await;
    closed_by_peer(&mut stream).await
}

/// Reads (and drops) until end of stream or an error; whether that came
/// before the deadline.
pub(crate) async fn closed_by_peer<S: AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut sink = [0u8; 4096];
    let drained = async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(DEADLINE, drained).await.is_ok()
}

/// The resident set of process `pid`, in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
