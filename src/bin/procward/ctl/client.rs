//! One connection to a `procward serve --socket` server: a request out, its
//! response line in, one at a time.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// Why a `procward ctl` command failed. Each is printed on stderr as one
/// line and exits with status 1.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CtlError {
    /// Nothing listens at the path: no file, or a socket file a server
    /// left behind.
    #[error("no server at {}: {source} (start one with `procward serve --socket {}`)",
            path.display(), path.display())]
    NoServer {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The socket (or a directory on its path) is not ours to use.
    #[error("permission denied: cannot connect to {} (the socket is mode 0600, owned by the user who runs the server)",
            path.display())]
    PermissionDenied { path: PathBuf },
    /// Any other failure to connect.
    #[error("cannot connect to {}: {source}", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The connection failed, or the server closed it, mid-request.
    #[error("lost the connection to the server: {0}")]
    Connection(#[source] std::io::Error),
    /// The server answered with something that is not a response.
    #[error("the server's answer is not understood: {0}")]
    Protocol(String),
    /// No such handle (never existed, released, or its receipt expired).
    #[error("unknown handle `{0}`")]
    UnknownHandle(String),
    /// The server refused the request; `kind` is the protocol's error
    /// kind.
    #[error("{message} ({kind})")]
    Refused { kind: String, message: String },
    /// Writing our own output failed.
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
}

/// A connection to a socket server.
pub(crate) struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
    line: String,
}

impl Client {
    /// Connects to the server at `path`.
    pub(crate) async fn connect(path: &Path) -> Result<Self, CtlError> {
        let stream = UnixStream::connect(path).await.map_err(|source| {
            let path = path.to_owned();
            match source.kind() {
                ErrorKind::NotFound | ErrorKind::ConnectionRefused => {
                    CtlError::NoServer { path, source }
                }
                ErrorKind::PermissionDenied => CtlError::PermissionDenied { path },
                _ => CtlError::Connect { path, source },
            }
        })?;
        let (reader, writer) = stream.into_split();
        Ok(Client {
            reader: BufReader::new(reader),
            writer,
            next_id: 1,
            line: String::new(),
        })
    }

    /// Sends `op` with `params` (an object) and returns the response's
    /// `result`; an error response becomes a [`CtlError`].
    pub(crate) async fn call(&mut self, op: &str, params: Value) -> Result<Value, CtlError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = json!({"id": id, "op": op});
        if let (Some(request), Value::Object(params)) = (request.as_object_mut(), params) {
            request.extend(params);
        }
        let mut line = request.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .await
            .map_err(CtlError::Connection)?;
        self.line.clear();
        let read = self
            .reader
            .read_line(&mut self.line)
            .await
            .map_err(CtlError::Connection)?;
        if read == 0 {
            return Err(CtlError::Connection(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )));
        }
        let mut response: Value = serde_json::from_str(&self.line)
            .map_err(|err| CtlError::Protocol(format!("{err}: {}", self.line.trim_end())))?;
        if response["id"] != json!(id) {
            return Err(CtlError::Protocol(format!(
                "expected the answer to request {id}, got {}",
                self.line.trim_end()
            )));
        }
        if response["ok"] == json!(true) {
            return Ok(response["result"].take());
        }
        let error = &response["error"];
        let kind = error["kind"].as_str().unwrap_or("unknown").to_owned();
        let message = error["message"].as_str().unwrap_or("").to_owned();
        Err(match kind.as_str() {
            "unknown_handle" => {
                CtlError::UnknownHandle(request["handle_id"].as_str().unwrap_or("").to_owned())
            }
            _ => CtlError::Refused { kind, message },
        })
    }
}
