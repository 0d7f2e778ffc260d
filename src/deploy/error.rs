//! Why an action failed, classified so the API and CLI can choose their words.

use crate::api::wire::ErrorKind;
use crate::health::GateError;
use crate::router::RouterError;
use crate::runtime::RuntimeError;
use crate::state::{DeployLock, StateError};

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
    #[error(
        "service {service:?} is locked by {lock}; if that deploy is no longer running, pass --force-unlock"
    )]
    Locked { service: String, lock: DeployLock },
    #[error("{0}")]
    Invalid(String),
    #[error("could not start the new slot: {0}")]
    Start(#[source] RuntimeError),
    #[error("the new slot failed its health check: {0}")]
    Health(#[source] Box<GateError>),
    #[error("could not change routes: {0}")]
    Route(#[source] RouterError),
    #[error("could not save state: {0}")]
    State(#[source] StateError),
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

impl DeployError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            DeployError::Busy { .. } | DeployError::Locked { .. } => ErrorKind::Busy,
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
            | DeployError::ShuttingDown => ErrorKind::Internal,
        }
    }
}
