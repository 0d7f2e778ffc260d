//! The Docker side of `teal check`, for docker services run on this machine:
//! whether the engine answers (as `teal serve` will reach it: `DOCKER_HOST`,
//! else the local socket) and whether it has the image of the version to
//! deploy. A missing image is no problem: teal pulls it at deploy.

use std::time::Duration;

use bollard::Docker;

use crate::runtime::docker::{reference, short_id};

/// How long the engine has to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// The engine, or why it cannot be reached, in words for the user.
pub(super) async fn connect() -> Result<Docker, String> {
    let host = crate::runtime::docker::engine_address();
    let unreachable = |why: String| {
        let hint = if why.contains("ermission denied") {
            " (add this user to the docker group, or run teal as a user that may use the engine)"
        } else {
            ""
        };
        format!("the Docker engine at {host} does not answer: {why}{hint}")
    };
    let docker = Docker::connect_with_defaults().map_err(|e| unreachable(e.to_string()))?;
    match tokio::time::timeout(ANSWER_WITHIN, docker.negotiate_version()).await {
        Ok(Ok(docker)) => Ok(docker),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable(format!("no answer in {ANSWER_WITHIN:?}"))),
    }
}

/// What the engine has of `image` at `version`: "shop:1.0 (0123456789ab),
/// on this machine", or that teal will pull it.
pub(super) async fn image(docker: &Docker, image: &str, version: &str) -> String {
    let reference = reference(image, version);
    match tokio::time::timeout(ANSWER_WITHIN, docker.inspect_image(&reference)).await {
        Ok(Ok(found)) => match found.id {
            Some(id) => format!("{reference} ({}), on this machine", short_id(&id)),
            None => format!("{reference}, on this machine"),
        },
        Ok(Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        })) => format!("{reference} is not on this machine: teal pulls it at deploy"),
        Ok(Err(e)) => format!("{reference}: the engine could not say ({e})"),
        Err(_) => format!("{reference}: the engine did not answer in {ANSWER_WITHIN:?}"),
    }
}
