//! Reading secret files (the cookie, TLS private keys): regular files owned
//! by the user the process runs as, that nobody else may read or write.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::error::{RemoteError, RemoteErrorKind};

/// Reads the whole of the secret file at `path`. `what` names it in
/// errors ("cookie file", "TLS key file").
///
/// Refuses, with [`RemoteErrorKind::InvalidRequest`] and a message naming
/// the file, one that cannot be opened, is not a regular file, is owned by
/// another user than the process's effective user (root included: a root
/// node does not take another user's secret), or is readable or writable
/// by group or others (the message says to `chmod 600` it).
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
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(refuse(format!(
            "is owned by uid {}, not by uid {me} that this process runs as; `chown` it",
            meta.uid()
        )));
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::fs;

    use super::*;

    #[test]
    fn refuses_a_file_owned_by_another_user() {
        let me = rustix::process::geteuid().as_raw();
        let dir = std::env::temp_dir().join(format!("procward-owner-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cookie");
        fs::write(&path, "s3cret").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let foreign = if me == 0 {
            // Root can give it away; 65534 is `nobody`.
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            path.clone()
        } else {
            // Anyone else: a file root owns.
            Path::new("/etc/passwd").to_path_buf()
        };
        let err = read_private_file(&foreign, "cookie file").unwrap_err();
        assert_eq!(err.kind, RemoteErrorKind::InvalidRequest);
        assert!(err.message.contains("is owned by uid"), "{err}");
        assert!(
            err.message.contains(&foreign.display().to_string()),
            "{err}"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
