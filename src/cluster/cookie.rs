//! Reading the cluster cookie: a secret file only its owner may read.

use std::path::Path;

use super::error::{RemoteError, RemoteErrorKind};
use super::private_file::read_private_file;

/// Reads the magic cookie that nodes and clients authenticate with.
///
/// Refuses (with [`RemoteErrorKind::InvalidRequest`] and a message naming
/// the file) a file that is missing, not a regular file, owned by another
/// user than the process's effective user (`chown` it), readable or
/// writable by group or others (`chmod 600` it), not UTF-8, or empty.
/// Leading and trailing whitespace (a final newline) is not part of the
/// cookie.
pub fn read_cookie_file(path: &Path) -> Result<String, RemoteError> {
    let refuse = |why: &str| {
        RemoteError::new(
            RemoteErrorKind::InvalidRequest,
            format!("cookie file `{}` {why}", path.display()),
        )
    };
    let bytes = read_private_file(path, "cookie file")?;
    let text = String::from_utf8(bytes).map_err(|_| refuse("is not UTF-8 text"))?;
    let cookie = text.trim();
    if cookie.is_empty() {
        return Err(refuse("is empty"));
    }
    Ok(cookie.to_owned())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

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
