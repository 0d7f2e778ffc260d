//! The host's half of shipping, run by the hidden `teal image` commands on the
//! host: ask its Docker engine for an image ID, load a zstd-compressed archive
//! from stdin, point a reference at an image. All through bollard, so the host
//! needs the engine but no docker CLI. The CLI side never calls these directly:
//! it runs them over ssh (`ship.rs`).

use std::sync::{Arc, Mutex};

use async_compression::tokio::bufread::ZstdDecoder;
use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{ImportImageOptionsBuilder, TagImageOptionsBuilder};
use futures_util::{StreamExt, TryStreamExt};
use tokio::io::{AsyncRead, BufReader};
use tokio_util::io::ReaderStream;

use super::Presence;
use crate::runtime::docker::split_tag;

/// Why the host could not answer or load.
#[derive(Debug, thiserror::Error)]
pub enum HostImageError {
    #[error("cannot reach the Docker engine at {at}: {cause}")]
    Unreachable { at: String, cause: String },
    /// The bytes that arrived were not a whole zstd stream: an interrupted
    /// transfer, or not teal's stream at all.
    #[error("the image stream broke off or is damaged ({0}); nothing was loaded")]
    Stream(String),
    #[error("the Docker engine refused the image: {0}")]
    Refused(String),
    #[error("the Docker engine failed: {0}")]
    Engine(String),
}

/// The host's engine.
pub struct HostEngine {
    docker: Docker,
}

impl HostEngine {
    /// Connects to the engine `DOCKER_HOST` names (else the local socket), as the
    /// docker runtime of this host's daemon does.
    pub async fn connect() -> Result<HostEngine, HostImageError> {
        let unreachable = |e: BollardError| HostImageError::Unreachable {
            at: crate::runtime::docker::engine_address(),
            cause: e.to_string(),
        };
        let docker = Docker::connect_with_defaults().map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        Ok(HostEngine { docker })
    }

    /// Whether the engine has the image `id`.
    pub async fn presence(&self, id: &str) -> Result<Presence, HostImageError> {
        let present = match self.docker.inspect_image(id).await {
            Ok(_) => true,
            Err(e) if status(&e) == Some(404) => false,
            Err(e) => return Err(HostImageError::Engine(short(&e))),
        };
        Ok(Presence {
            id: id.to_string(),
            present,
        })
    }

    /// Points `reference` (`repo:tag`) at the image `id`, as `docker load` of a
    /// saved tag would. A digest reference (`repo@sha256:...`) cannot be a tag
    /// and is left alone.
    pub async fn tag(&self, id: &str, reference: &str) -> Result<(), HostImageError> {
        if reference.contains('@') {
            return Ok(());
        }
        let (repo, tag) = split_tag(reference);
        let options = TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        self.docker
            .tag_image(id, Some(options))
            .await
            .map_err(|e| HostImageError::Engine(format!("tagging {reference}: {}", short(&e))))
    }

    /// Loads the zstd-compressed image archive read from `input` (the engine's
    /// `POST /images/load`, streamed: nothing is written to disk first). Returns
    /// what the engine said it loaded.
    pub async fn load(
        &self,
        input: impl AsyncRead + Send + Unpin + 'static,
    ) -> Result<Vec<String>, HostImageError> {
        // The first decompression error, kept: the engine only sees a body that
        // broke off, and would report that less clearly.
        let broken: Arc<Mutex<Option<String>>> = Arc::default();
        let seen = broken.clone();
        let body = ReaderStream::new(ZstdDecoder::new(BufReader::new(input))).inspect_err(
            move |e: &std::io::Error| {
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                seen.get_or_insert_with(|| e.to_string());
            },
        );
        let options = ImportImageOptionsBuilder::default().quiet(true).build();
        let mut answers = self
            .docker
            .import_image(options, bollard::body_try_stream(body), None);
        let mut loaded = Vec::new();
        let mut failure = None;
        while let Some(answer) = answers.next().await {
            match answer {
                Ok(info) => loaded.extend(info.stream.map(|s| s.trim().to_string())),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        drop(answers);
        if let Some(cause) = broken.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(HostImageError::Stream(cause));
        }
        match failure {
            Some(e @ BollardError::DockerStreamError { .. }) => {
                Err(HostImageError::Refused(short(&e)))
            }
            Some(e) if status(&e).is_some() => Err(HostImageError::Refused(short(&e))),
            Some(e) => Err(HostImageError::Engine(short(&e))),
            None => Ok(loaded.into_iter().filter(|l| !l.is_empty()).collect()),
        }
    }
}

fn status(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The engine's own words when it sent some, else bollard's.
fn short(e: &BollardError) -> String {
    match e {
        BollardError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        BollardError::DockerStreamError { error } => error.trim().to_string(),
        other => other.to_string(),
    }
}
