//! The open-files limit of `teal serve`: every client connection, upstream
//! connection and admin connection is a file descriptor, and a distribution's
//! default soft limit (often 1,024) is far below what a proxy facing the
//! internet needs. At start the daemon raises its soft limit to the hard limit
//! (what nginx's `worker_rlimit_nofile` does by hand) and says how many it has.
//!
//! This module does not decide what to do when descriptors run out (the
//! accept loops pause: `crate::AcceptPause`), and it never raises the
//! hard limit (that needs privileges: `LimitNOFILE=` in a systemd unit,
//! `ulimit -Hn`).

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The open-files limits after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit before.
    pub was: u64,
    /// The soft limit now (the hard limit, unless raising failed).
    pub soft: u64,
    pub hard: u64,
}

/// Why the limit could not be read or raised.
#[derive(Debug, thiserror::Error)]
pub enum OpenFilesError {
    #[error("reading the open-files limit: {0}")]
    Read(nix::Error),
    #[error("raising the open-files soft limit from {was} to {hard}: {cause}")]
    Raise {
        was: u64,
        hard: u64,
        cause: nix::Error,
    },
}

/// Raises this process's soft open-files limit to its hard limit.
pub fn raise() -> Result<OpenFiles, OpenFilesError> {
    let (was, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(OpenFilesError::Read)?;
    if was < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(|cause| OpenFilesError::Raise {
            was,
            hard,
            cause,
        })?;
    }
    Ok(OpenFiles {
        was,
        soft: hard,
        hard,
    })
}

/// Raises the limit and logs the outcome: how many descriptors the daemon
/// may use, or why it could not raise them (it serves anyway).
pub fn raise_and_log() {
    match raise() {
        Ok(limits) if limits.was < limits.soft => tracing::info!(
            open_files = limits.soft,
            raised_from = limits.was,
            "open-files limit raised to the hard limit"
        ),
        Ok(limits) => tracing::info!(open_files = limits.soft, "open-files limit"),
        Err(error) => tracing::warn!("{error}"),
    }
}
