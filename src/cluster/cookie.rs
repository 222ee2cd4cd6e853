//! Reading the cluster cookie: a secret file only its owner may read.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::error::{RemoteError, RemoteErrorKind};

/// Reads the magic cookie that nodes and clients authenticate with.
///
/// Refuses (with [`RemoteErrorKind::InvalidRequest`] and a message naming
/// the file) a file that is missing, not a regular file, readable or
/// writable by group or others (`chmod 600` it), or empty. Leading and
/// trailing whitespace (a final newline) is not part of the cookie.
pub fn read_cookie_file(path: &Path) -> Result<String, RemoteError> {
    let refuse = |why: String| {
        RemoteError::new(
            RemoteErrorKind::InvalidRequest,
            format!("cookie file `{}` {why}", path.display()),
        )
    };
    let meta = fs::metadata(path).map_err(|err| refuse(format!("cannot be read: {err}")))?;
    if !meta.is_file() {
        return Err(refuse("is not a regular file".to_owned()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(refuse(format!(
            "is accessible by group or others (mode {mode:03o}); run `chmod 600` on it"
        )));
    }
    let text = fs::read_to_string(path).map_err(|err| refuse(format!("cannot be read: {err}")))?;
    let cookie = text.trim();
    if cookie.is_empty() {
        return Err(refuse("is empty".to_owned()));
    }
    Ok(cookie.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, contents: &str, mode: u32) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("procward-cookie-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        fs::write(&path, contents).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn reads_a_private_cookie() {
        let path = temp_file("ok", "s3cret\n", 0o600);
        assert_eq!(read_cookie_file(&path).unwrap(), "s3cret");
    }

    #[test]
    fn refuses_missing_empty_and_shared() {
        let missing = std::env::temp_dir().join("procward-no-such-cookie");
        assert!(
            read_cookie_file(&missing)
                .unwrap_err()
                .message
                .contains("cannot be read")
        );
        let empty = temp_file("empty", " \n", 0o600);
        assert!(
            read_cookie_file(&empty)
                .unwrap_err()
                .message
                .contains("empty")
        );
        for mode in [0o640, 0o604, 0o660] {
            let shared = temp_file("shared", "s3cret", mode);
            let err = read_cookie_file(&shared).unwrap_err();
            assert!(err.message.contains("chmod 600"), "{mode:o}: {err}");
        }
    }
}
