//! [`Wire`]: how gateway payloads cross the network (MessagePack through
//! ractor_cluster's `BytesConvertable`).

use ractor::BytesConvertable;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::{RemoteError, RemoteErrorKind};

/// The largest encoded payload a gateway sends. Larger answers (a snapshot
/// with two full 16 MiB captures, say) are replaced by a
/// [`RemoteErrorKind::TooLarge`] error instead of breaking the session;
/// nodes and clients accept frames a little larger than this.
pub const MAX_WIRE_BYTES: usize = 48 << 20;

/// The inbound frame limit set on every procward `NodeServer`: the payload
/// cap plus room for ractor_cluster's envelope.
pub(crate) const MAX_FRAME_BYTES: u64 = (MAX_WIRE_BYTES as u64) + (1 << 20);

/// One argument or answer of a [`RemoteRegistryMsg`](super::RemoteRegistryMsg):
/// a value, or the error that replaced it.
///
/// Only procward builds one: the gateway's messages are the cluster
/// protocol, which [`ClusterClient`](super::ClusterClient) speaks. A
/// caller reads an answer with [`into_result`](Self::into_result).
///
/// ractor_cluster's decoding cannot fail (`from_bytes` returns `Self`), so a
/// payload that does not decode arrives as a
/// [`RemoteErrorKind::Protocol`] error instead of a panic.
#[derive(Debug, Clone, PartialEq)]
pub struct Wire<T>(Result<T, RemoteError>);

impl<T> Wire<T> {
    /// Wraps a result.
    pub(crate) fn new(result: Result<T, RemoteError>) -> Self {
        Wire(result)
    }

    /// Wraps a value.
    pub(crate) fn ok(value: T) -> Self {
        Wire(Ok(value))
    }

    /// The value, or the error that replaced it.
    pub fn into_result(self) -> Result<T, RemoteError> {
        self.0
    }
}

fn encode_error(error: &RemoteError) -> Vec<u8> {
    // An empty vector decodes as a protocol error on the other side, which
    // is the best left if even an error cannot be encoded.
    rmp_serde::to_vec_named(&Err::<(), _>(error)).unwrap_or_default()
}

impl<T: Serialize + DeserializeOwned> BytesConvertable for Wire<T> {
    fn into_bytes(self) -> Vec<u8> {
        match rmp_serde::to_vec_named(&self.0) {
            Ok(bytes) if bytes.len() <= MAX_WIRE_BYTES => bytes,
            Ok(bytes) => encode_error(&RemoteError::new(
                RemoteErrorKind::TooLarge,
                format!(
                    "answer of {} bytes is over the {MAX_WIRE_BYTES}-byte cluster limit; \
                     read the output in pieces",
                    bytes.len()
                ),
            )),
            Err(err) => encode_error(&RemoteError::new(
                RemoteErrorKind::Protocol,
                format!("cannot encode: {err}"),
            )),
        }
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        match rmp_serde::from_slice(&bytes) {
            Ok(result) => Wire(result),
            Err(err) => Wire(Err(RemoteError::new(
                RemoteErrorKind::Protocol,
                format!("cannot decode a cluster message: {err}"),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::messages::{
        Answer, HandleCounts, ListFilter, OutputStream, ReadChunk, ReadRequest, Request,
        WaitOutcome,
    };
    use crate::{KillRequest, Signal, Snapshot, SpawnRequest, Status};

    /// Through MessagePack and back, as a peer would get it.
    fn round_trip<T: Serialize + DeserializeOwned>(value: T) -> Result<T, RemoteError> {
        Wire::<T>::from_bytes(Wire::ok(value).into_bytes()).into_result()
    }

    /// One request of every kind. The match has no wildcard, so a new
    /// variant does not compile until it is added here.
    fn every_request() -> Vec<Request> {
        let id = "psh-7-3".parse().unwrap();
        let kill = KillRequest::terminate(Duration::from_millis(250));
        let all = vec![
            Request::Spawn(SpawnRequest::shell("echo hi").owner("job")),
            Request::Poll { id },
            Request::Wait {
                id,
                timeout: Some(Duration::from_millis(1500)),
            },
            Request::Wait { id, timeout: None },
            Request::Kill { id, request: kill },
            Request::Release { id },
            Request::Pause { id },
            Request::Resume { id },
            Request::Read {
                id,
                request: ReadRequest::new(OutputStream::Stderr).offset(9),
            },
            Request::Write {
                id,
                bytes: bytes::Bytes::from_static(b"\x00\xffbinary"),
            },
            Request::CloseStdin { id },
            Request::List(ListFilter::default().owner("o").status(Status::Killed)),
            Request::Counts,
            Request::KillOwner {
                owner: "o".into(),
                request: KillRequest::default().signal(Signal::INT),
                close: true,
            },
            Request::ReopenOwner { owner: "o".into() },
            Request::ReleaseOwner { owner: "o".into() },
        ];
        for request in &all {
            match request {
                Request::Spawn(_)
                | Request::Poll { .. }
                | Request::Wait { .. }
                | Request::Kill { .. }
                | Request::Release { .. }
                | Request::Pause { .. }
                | Request::Resume { .. }
                | Request::Read { .. }
                | Request::Write { .. }
                | Request::CloseStdin { .. }
                | Request::List(_)
                | Request::Counts
                | Request::KillOwner { .. }
                | Request::ReopenOwner { .. }
                | Request::ReleaseOwner { .. } => {}
            }
        }
        all
    }

    /// One answer of every kind; exhaustive as [`every_request`].
    fn every_answer() -> Vec<Answer> {
        let snapshot = Snapshot::running_for_tests();
        let all = vec![
            Answer::Snapshot(snapshot.clone()),
            Answer::Waited(WaitOutcome {
                snapshot: snapshot.clone(),
                timed_out: true,
            }),
            Answer::Released(true),
            Answer::Read(ReadChunk {
                stream: OutputStream::Stdout,
                offset: 3,
                bytes: bytes::Bytes::from_static(b"lo\n"),
                next_offset: 6,
                dropped: false,
                total_bytes: 6,
                complete: true,
            }),
            Answer::Done,
            Answer::Listed(vec![snapshot.summary()]),
            Answer::Counts(HandleCounts {
                running: 1,
                terminal: 2,
                starting: 3,
                queued: 4,
            }),
            Answer::Killed(vec![snapshot.clone(), snapshot]),
            Answer::Reopened(false),
            Answer::ReleasedOwner(5),
        ];
        for answer in &all {
            match answer {
                Answer::Snapshot(_)
                | Answer::Waited(_)
                | Answer::Released(_)
                | Answer::Read(_)
                | Answer::Done
                | Answer::Listed(_)
                | Answer::Counts(_)
                | Answer::Killed(_)
                | Answer::Reopened(_)
                | Answer::ReleasedOwner(_) => {}
            }
        }
        all
    }

    #[test]
    fn every_request_round_trips() {
        for request in every_request() {
            assert_eq!(round_trip(request.clone()).unwrap(), request);
        }
    }

    #[test]
    fn every_answer_round_trips() {
        for answer in every_answer() {
            assert_eq!(round_trip(answer.clone()).unwrap(), answer);
        }
    }

    #[test]
    fn an_unknown_or_malformed_request_is_a_protocol_error() {
        #[derive(Serialize)]
        enum FromTheFuture {
            Teleport { id: String },
        }
        #[derive(Serialize)]
        enum Malformed {
            Poll { id: u32 },
            Kill { id: String },
        }
        // What a peer's `Wire` of its own types puts on the wire.
        fn encode<T: Serialize>(value: T) -> Vec<u8> {
            rmp_serde::to_vec_named(&Ok::<_, RemoteError>(value)).unwrap()
        }
        let unknown = encode(FromTheFuture::Teleport {
            id: "psh-1-1".into(),
        });
        let wrong_type = encode(Malformed::Poll { id: 7 });
        let missing_field = encode(Malformed::Kill {
            id: "psh-1-1".into(),
        });
        let bad_id = encode(Malformed::Kill {
            id: "not a handle".into(),
        });
        for bytes in [unknown, wrong_type, missing_field, bad_id] {
            let err = Wire::<Request>::from_bytes(bytes)
                .into_result()
                .unwrap_err();
            assert_eq!(err.kind, RemoteErrorKind::Protocol, "{err}");
        }
    }

    #[test]
    fn spawn_request_round_trips() {
        let request = SpawnRequest::shell("echo hi")
            .env("A", "b")
            .timeout(std::time::Duration::from_millis(1500));
        let back = Wire::<SpawnRequest>::from_bytes(Wire::ok(request.clone()).into_bytes());
        assert_eq!(back.into_result().unwrap(), request);
    }

    #[test]
    fn errors_round_trip() {
        let err = RemoteError::new(RemoteErrorKind::UnknownHandle, "gone");
        let back =
            Wire::<Snapshot>::from_bytes(Wire::<Snapshot>::new(Err(err.clone())).into_bytes());
        assert_eq!(back.into_result().unwrap_err(), err);
    }

    #[test]
    fn garbage_decodes_as_protocol_error() {
        for bytes in [vec![], vec![0xc1], b"not msgpack".to_vec()] {
            let back = Wire::<Snapshot>::from_bytes(bytes);
            assert_eq!(
                back.into_result().unwrap_err().kind,
                RemoteErrorKind::Protocol
            );
        }
    }
}
