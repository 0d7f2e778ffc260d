//! Why an action failed, classified so the API and CLI can choose their words.
//!
//! Every message carries its cause, so no variant also returns it from
//! `source()` (the CLI prints a chain with `{:#}`; the cause would appear twice).

use crate::health::GateError;
use crate::hooks::HookError;
use crate::router::RouterError;
use crate::runtime::RuntimeError;
use crate::spec::HookPoint;
use crate::state::{DeployLock, StateError};
use crate::wire::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("deploy in progress for service {service:?}: wait for it to finish")]
    Busy { service: String },
    #[error("unknown service {0:?}: it was never deployed on this daemon")]
    UnknownService(String),
    #[error("service {0:?} has no staged slot to promote (deploy with --no-promote first)")]
    NothingToPromote(String),
    #[error("service {0:?} has no previous version to roll back to")]
    NothingToRollback(String),
    #[error("service {0:?} has no staged slot to discard")]
    NothingToDiscard(String),
    #[error("service {service:?} is locked by {lock}; {}", lock_advice(.lock))]
    Locked {
        service: String,
        lock: Box<DeployLock>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("could not start the new slot: {0}")]
    Start(RuntimeError),
    #[error("the new slot failed its health check: {0}")]
    Health(Box<GateError>),
    #[error("could not change routes: {0}")]
    Route(RouterError),
    #[error("could not save state: {0}")]
    State(StateError),
    #[error("the daemon is shutting down")]
    ShuttingDown,
    #[error("teal is being upgraded (a new daemon is taking over): try again in a moment")]
    Upgrading,
    /// A `pre_deploy` or `pre_switch` hook failed (production untouched), or a
    /// post hook failed with `rollback_on_failure`.
    #[error("the {point} hook failed: {error}")]
    Hook { point: HookPoint, error: HookError },
    /// After the switch, verification or a post hook failed and production went
    /// back to the previous slot. Already recorded in history.
    #[error("{reason}; production switched back to {version}")]
    RolledBack { reason: String, version: String },
    /// As [`DeployError::RolledBack`], but the switch back itself failed.
    #[error("{reason}; switching back to {version} failed: {error}")]
    SwitchBackFailed {
        reason: String,
        version: String,
        error: Box<DeployError>,
    },
}

impl DeployError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            DeployError::Busy { .. } | DeployError::Locked { .. } | DeployError::Upgrading => {
                ErrorKind::Busy
            }
            DeployError::UnknownService(_)
            | DeployError::NothingToPromote(_)
            | DeployError::NothingToRollback(_)
            | DeployError::NothingToDiscard(_) => ErrorKind::NotFound,
            DeployError::Invalid(_) => ErrorKind::Invalid,
            DeployError::Start(RuntimeError::InvalidSpec(_)) => ErrorKind::Invalid,
            DeployError::Route(RouterError::Conflict(_) | RouterError::Invalid(_)) => {
                ErrorKind::Invalid
            }
            DeployError::Start(_)
            | DeployError::Health(_)
            | DeployError::Route(_)
            | DeployError::State(_)
            | DeployError::ShuttingDown
            | DeployError::Hook { .. }
            | DeployError::RolledBack { .. }
            | DeployError::SwitchBackFailed { .. } => ErrorKind::Internal,
        }
    }

    /// True for failures after the switch, which the action recorded itself
    /// (the new slot is already gone); the caller must not discard or record again.
    pub fn after_switch(&self) -> bool {
        matches!(
            self,
            DeployError::RolledBack { .. } | DeployError::SwitchBackFailed { .. }
        )
    }
}

/// What to do about a lock someone else holds.
fn lock_advice(lock: &DeployLock) -> &'static str {
    if lock.lapses.is_some() {
        "if that deploy is no longer running, its lock lapses on its own then (or pass --force-unlock)"
    } else {
        "if that deploy is no longer running, pass --force-unlock"
    }
}
