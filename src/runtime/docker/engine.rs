//! The connection to the Docker engine, and what teal writes on its containers.
//!
//! The engine is reached lazily, on the first docker action, through bollard's
//! defaults (`DOCKER_HOST`, else the local socket), and the API version is
//! negotiated down to what the engine speaks. A daemon with only process
//! services therefore never needs an engine.

use bollard::Docker;
use bollard::errors::Error as BollardError;
use tokio::sync::OnceCell;

use crate::runtime::RuntimeError;
use crate::slot::Slot;

/// Labels on every container teal starts. With them the live picture can be
/// rebuilt from the engine alone.
pub(super) const LABEL_SERVICE: &str = "teal.service";
pub(super) const LABEL_SLOT: &str = "teal.slot";
pub(super) const LABEL_INSTANCE: &str = "teal.instance";
pub(super) const LABEL_VERSION: &str = "teal.version";
pub(super) const LABEL_IMAGE_ID: &str = "teal.image-id";
pub(super) const LABEL_DEPLOY_ID: &str = "teal.deploy-id";

/// `<service>-<slot>-<n>`.
pub(super) fn container_name(service: &str, slot: Slot, index: usize) -> String {
    format!("{service}-{slot}-{index}")
}

/// A lazily connected engine client.
#[derive(Debug, Default)]
pub(super) struct Engine {
    /// Set by the first successful connection; a failed one is retried next time.
    client: OnceCell<Docker>,
}

impl Engine {
    pub(super) async fn get(&self) -> Result<&Docker, RuntimeError> {
        self.client
            .get_or_try_init(|| async {
                let docker = Docker::connect_with_defaults().map_err(|e| unreachable_engine(&e))?;
                docker
                    .negotiate_version()
                    .await
                    .map_err(|e| unreachable_engine(&e))
            })
            .await
    }
}

/// Where bollard's defaults reach the engine: `DOCKER_HOST`, else the local socket.
pub fn address() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

fn unreachable_engine(e: &BollardError) -> RuntimeError {
    RuntimeError::Engine(format!(
        "cannot reach the Docker engine at {} (set DOCKER_HOST to point elsewhere): {e}",
        address()
    ))
}

/// An engine error, with what teal was doing.
pub(super) fn engine_error(what: impl std::fmt::Display, e: BollardError) -> RuntimeError {
    RuntimeError::Engine(format!("{what}: {}", short(&e)))
}

/// The engine's own message when it sent one, else bollard's.
pub(super) fn short(e: &BollardError) -> String {
    match e {
        BollardError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        other => other.to_string(),
    }
}

/// The HTTP status the engine answered with, if it answered.
pub(super) fn status_of(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

pub(super) fn is_not_found(e: &BollardError) -> bool {
    status_of(e) == Some(404)
}
