//! Reading secret files (the cookie, TLS private keys): regular files that
//! only their owner may read or write.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::error::{RemoteError, RemoteErrorKind};

/// Reads the whole of the secret file at `path`. `what` names it in
/// errors ("cookie file", "TLS key file").
///
/// Refuses, with [`RemoteErrorKind::InvalidRequest`] and a message naming
/// the file, one that cannot be opened, is not a regular file, or is
/// readable or writable by group or others (the message says to
/// `chmod 600` it).
pub(crate) fn read_private_file(path: &Path, what: &str) -> Result<Vec<u8>, RemoteError> {
    let refuse = |why: String| {
        RemoteError::new(
            RemoteErrorKind::InvalidRequest,
            format!("{what} `{}` {why}", path.display()),
        )
    };
    // O_NONBLOCK: opening a FIFO must not wait for a writer. The checks
    // below are on the opened file, so it cannot be swapped after them.
    let mut file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|err| refuse(format!("cannot be read: {err}")))?;
    let meta = file
        .metadata()
        .map_err(|err| refuse(format!("cannot be read: {err}")))?;
    if !meta.is_file() {
        return Err(refuse("is not a regular file".to_owned()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(refuse(format!(
            "is accessible by group or others (mode {mode:03o}); run `chmod 600` on it"
        )));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|err| refuse(format!("cannot be read: {err}")))?;
    Ok(bytes)
}
