//! ACME HTTP-01 challenge files for the nginx router (`Router::set_challenge`).
//!
//! nginx serves `WEBROOT/.well-known/acme-challenge/TOKEN` for
//! `/.well-known/acme-challenge/TOKEN` on the plain listener, whatever the
//! Host (the location is in every server `render` writes there), and falls
//! back to the app when there is no such file. Setting a challenge is a file
//! written beside and renamed into place, so nginx never serves half of one;
//! no reload is needed. The webroot is teal's own directory (`workers::served_dir`):
//! readable by nginx's workers, whoever they run as.
//!
//! This module does not know about ACME orders: it only writes and removes
//! what the caller says.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::workers;
use crate::router::RouterError;

/// Where the files live under the webroot: the URL path without its `/`.
const CHALLENGE_DIR: &str = ".well-known/acme-challenge";
/// Longest token accepted (a file name must fit in 255 bytes; ACME tokens
/// are 43 characters in practice).
const MAX_TOKEN: usize = 200;

/// The challenge webroot of one nginx router.
pub(crate) struct Challenges {
    webroot: PathBuf,
    /// Makes each file written beside unique, so two writes of one token
    /// never share a temporary file.
    written: AtomicU64,
}

impl Challenges {
    /// Prepares the webroot for the nginx managed in or configured from `dir`
    /// (`state_dir/nginx`). `others`: nginx's workers run as another user.
    pub fn prepare(dir: &Path, others: bool) -> Result<Challenges, RouterError> {
        let io = |e: std::io::Error| {
            RouterError::Other(format!(
                "cannot prepare the ACME challenge directory for {}: {e}",
                dir.display()
            ))
        };
        let webroot = workers::served_dir(dir, "acme", others).map_err(io)?;
        let files = webroot.join(CHALLENGE_DIR);
        fs::create_dir_all(&files).map_err(io)?;
        if others {
            for sub in [webroot.join(".well-known"), files] {
                fs::set_permissions(sub, fs::Permissions::from_mode(0o755)).map_err(io)?;
            }
        }
        Ok(Challenges {
            webroot,
            written: AtomicU64::new(0),
        })
    }

    /// Removes the webroot when it is outside the state dir (nginx no longer
    /// serves it); the state dir's own stays.
    pub fn forget(&self) {
        workers::forget_served(&self.webroot);
    }

    /// The `root` of the challenge location.
    pub fn webroot(&self) -> &Path {
        &self.webroot
    }

    /// Serves `key_authorization` for `token` from now on (`Some`), or stops
    /// serving it (`None`; already absent is fine).
    pub fn set(&self, token: &str, key_authorization: Option<&str>) -> Result<(), RouterError> {
        check_token(token)?;
        let file = self.webroot.join(CHALLENGE_DIR).join(token);
        let io = |e: std::io::Error, path: &Path| {
            RouterError::Other(format!("cannot write {}: {e}", path.display()))
        };
        let Some(text) = key_authorization else {
            return match fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e, &file)),
                _ => Ok(()),
            };
        };
        // Beside, but outside the served directory: never answered half written.
        let n = self.written.fetch_add(1, Ordering::Relaxed);
        let staging = self
            .webroot
            .join(".well-known")
            .join(format!(".incoming-{}-{n}", std::process::id()));
        let written = (|| {
            let mut out = fs::File::create(&staging)?;
            out.write_all(text.as_bytes())?;
            // Readable by nginx's workers whatever the umask.
            out.set_permissions(fs::Permissions::from_mode(0o644))?;
            out.sync_all()?;
            fs::rename(&staging, &file)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&staging);
            return Err(io(e, &file));
        }
        Ok(())
    }
}

/// An ACME token, as RFC 8555 makes them: base64url characters only, so it
/// is one file name and never a path.
pub fn check_token(token: &str) -> Result<(), RouterError> {
    let valid = !token.is_empty()
        && token.len() <= MAX_TOKEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(RouterError::Invalid(format!(
            "invalid ACME challenge token {token:?}: expected 1 to {MAX_TOKEN} base64url characters (A-Z, a-z, 0-9, '-', '_')"
        )))
    }
}

#[cfg(test)]
mod tests;
