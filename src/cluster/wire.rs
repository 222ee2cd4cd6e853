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
    use super::*;
    use crate::{Snapshot, SpawnRequest};

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
