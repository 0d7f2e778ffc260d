//! The one place errors become exit codes and words on stderr.
//!
//! 0 success · 1 the action failed (production untouched) · 2 bad input or config ·
//! 3 the daemon or a host is unreachable · 4 busy (another deploy in progress, or
//! the deploy lock is held) · 5 not found.
//!
//! An error is printed once, as `error: ` and its chain (`{:#}`: anyhow's context
//! first, then the error). That prints each cause once because of the crate's
//! convention: a `thiserror` message carries its cause (`{error}`, `{0}`), and
//! then the field is not also a `#[source]` (nor `#[from]`); only
//! `#[error(transparent)]` wrappers pass `source()` through. A closed stdout
//! (`teal history --json | head -1`) is no error at all: the reader had enough,
//! so the CLI ends quietly with 0, as ripgrep does.

use std::io;
use std::process::ExitCode;

use crate::api::client::ClientError;
use crate::config::ConfigError;
use crate::remote::RemoteError;
use crate::secrets::SecretsError;
use crate::wire::ErrorKind;

pub const FAILED: u8 = 1;
pub const INVALID: u8 = 2;
pub const UNREACHABLE: u8 = 3;
pub const BUSY: u8 = 4;
pub const NOT_FOUND: u8 = 5;

/// Ends the CLI after `err`: says it on stderr, unless stdout was closed, and
/// returns the exit code.
pub fn fail(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    eprintln!("{}", message(err));
    exit_code(err)
}

/// What the CLI prints for `err`: `error: ` and its chain, each cause once.
fn message(err: &anyhow::Error) -> String {
    format!("error: {err:#}")
}

/// True when writing to a closed stdout (or any closed pipe) is somewhere in the
/// chain of `err`: an `io::Error` of kind `BrokenPipe`, as ripgrep checks it.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Picks the exit code for an error that reached the CLI edge (0 for a closed
/// stdout).
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    if err.downcast_ref::<ConfigError>().is_some()
        || err.downcast_ref::<UsageError>().is_some()
        || err.downcast_ref::<SecretsError>().is_some()
    {
        return ExitCode::from(INVALID);
    }
    if let Some(client) = err.downcast_ref::<ClientError>() {
        return ExitCode::from(client_code(client));
    }
    if let Some(remote) = err.downcast_ref::<RemoteError>() {
        return ExitCode::from(match remote {
            RemoteError::Connect { .. } => UNREACHABLE,
            RemoteError::Daemon { error, .. } => client_code(error),
            RemoteError::Host { .. } | RemoteError::Failed(_) => FAILED,
        });
    }
    ExitCode::from(FAILED)
}

fn client_code(client: &ClientError) -> u8 {
    match client {
        ClientError::Unreachable { .. } => UNREACHABLE,
        ClientError::Api(e) => match e.kind {
            ErrorKind::Invalid => INVALID,
            ErrorKind::Busy => BUSY,
            ErrorKind::NotFound => NOT_FOUND,
            ErrorKind::Internal => FAILED,
        },
        _ => FAILED,
    }
}

/// Bad input caught by the CLI itself (an unknown service, no version to deploy).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

#[cfg(test)]
mod tests;
