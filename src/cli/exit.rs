//! The one place errors become exit codes.
//!
//! 0 success · 1 the action failed (production untouched) · 2 bad input or config ·
//! 3 the daemon or a host is unreachable · 4 busy (another deploy in progress, or
//! the deploy lock is held) · 5 not found.

use std::process::ExitCode;

use crate::api::client::ClientError;
use crate::config::ConfigError;
use crate::remote::RemoteError;
use crate::wire::ErrorKind;

pub const FAILED: u8 = 1;
pub const INVALID: u8 = 2;
pub const UNREACHABLE: u8 = 3;
pub const BUSY: u8 = 4;
pub const NOT_FOUND: u8 = 5;

/// Picks the exit code for an error that reached the CLI edge.
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    if err.downcast_ref::<ConfigError>().is_some() || err.downcast_ref::<UsageError>().is_some() {
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
