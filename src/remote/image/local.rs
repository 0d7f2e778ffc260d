//! The image on this machine: the reference resolved to its ID on the local
//! engine, and its export as a zstd stream with a count of the bytes before
//! compression (for the progress bar and the report).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_compression::tokio::bufread::ZstdEncoder;
use bollard::Docker;
use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::io::StreamReader;

use crate::runtime::docker::{reference, short_id};
use crate::spec::{RuntimeSpec, ServiceSpec};

/// An image this machine's engine has, to ship.
#[derive(Debug, Clone)]
pub struct LocalImage {
    /// The reference as the service names it (`app:1.2`), `{version}` substituted.
    pub reference: String,
    /// `sha256:...`: what is shipped, checked for, and run on the hosts.
    pub id: String,
    /// The image's size on the engine (uncompressed): about what the export
    /// streams before compression, so the progress bar can show an ETA.
    pub size: u64,
    /// The machine it is built for, in the engine's words (`amd64`, `arm64`).
    pub arch: Option<String>,
    docker: Docker,
}

/// Why the image cannot be shipped from here: the hosts resolve the reference
/// themselves (pulling it when their engine can).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotLocal(pub String);

impl LocalImage {
    /// The image of `version` of a docker service, from this machine's engine.
    /// `Ok(None)` for a service of another runtime.
    pub async fn of(spec: &ServiceSpec, version: &str) -> Result<Option<LocalImage>, NotLocal> {
        let RuntimeSpec::Docker(docker) = &spec.runtime else {
            return Ok(None);
        };
        LocalImage::find(&reference(&docker.image, version))
            .await
            .map(Some)
    }

    /// `reference` on this machine's engine (`DOCKER_HOST`, else the local socket).
    pub async fn find(reference: &str) -> Result<LocalImage, NotLocal> {
        let not_here = |why: String| {
            NotLocal(format!(
                "image {reference} is not shipped from here ({why}); each host resolves it itself"
            ))
        };
        let docker = Docker::connect_with_defaults()
            .map_err(|e| not_here(format!("no Docker engine on this machine: {e}")))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| not_here(format!("no Docker engine answers on this machine: {e}")))?;
        let image = docker.inspect_image(reference).await.map_err(|e| match e {
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            } => not_here("this machine's engine does not have it".to_string()),
            e => not_here(format!("inspecting it failed: {e}")),
        })?;
        let id = image
            .id
            .ok_or_else(|| not_here("the engine gave no image ID".to_string()))?;
        Ok(LocalImage {
            reference: reference.to_string(),
            id,
            size: image.size.unwrap_or(0).max(0) as u64,
            arch: image.architecture.filter(|a| !a.is_empty()),
            docker,
        })
    }

    /// Whether the image can run on a host whose `uname -m` is `uname` (an image
    /// that does not say what it is built for is given the benefit of the doubt).
    pub fn runs_on(&self, uname: &str) -> bool {
        let host = match uname {
            "x86_64" => "amd64",
            "aarch64" | "arm64" => "arm64",
            "armv7l" | "armv6l" => "arm",
            "i686" | "i386" => "386",
            other => other,
        };
        self.arch.as_deref().is_none_or(|arch| arch == host)
    }

    /// "app:1.2 (0123456789ab)".
    pub fn label(&self) -> String {
        format!("{} ({})", self.reference, short_id(&self.id))
    }

    /// The engine's export of the image, by ID (a tag that moves meanwhile
    /// cannot change what is sent), compressed with zstd.
    pub fn export(&self) -> Export {
        let raw = Arc::new(AtomicU64::new(0));
        let failed: Arc<Mutex<Option<String>>> = Arc::default();
        let (counted, seen) = (raw.clone(), failed.clone());
        let stream = self
            .docker
            .export_image(&self.id)
            .inspect_ok(move |chunk| {
                counted.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            })
            .map_err(move |e| {
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                seen.get_or_insert_with(|| e.to_string());
                std::io::Error::other(e)
            });
        Export {
            reader: Box::pin(ZstdEncoder::new(StreamReader::new(stream))),
            raw,
            failed,
        }
    }
}

/// The compressed export, read by the transfer.
pub struct Export {
    reader: Pin<Box<dyn AsyncRead + Send>>,
    /// Bytes the engine exported so far (before compression).
    raw: Arc<AtomicU64>,
    /// The engine's error, when the export broke off.
    failed: Arc<Mutex<Option<String>>>,
}

impl Export {
    /// A handle on the count of bytes before compression.
    pub fn raw_counter(&self) -> Arc<AtomicU64> {
        self.raw.clone()
    }

    /// A handle on the export's failure, if it fails.
    pub fn failure(&self) -> Arc<Mutex<Option<String>>> {
        self.failed.clone()
    }
}

impl AsyncRead for Export {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.reader.as_mut().poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_run_on_hosts_of_their_machine() {
        let image = |arch: Option<&str>| LocalImage {
            reference: "app:1".into(),
            id: "sha256:00".into(),
            size: 0,
            arch: arch.map(str::to_string),
            docker: Docker::connect_with_unix_defaults().unwrap(),
        };
        assert!(image(Some("amd64")).runs_on("x86_64"));
        assert!(image(Some("arm64")).runs_on("aarch64"));
        assert!(!image(Some("arm64")).runs_on("x86_64"));
        assert!(!image(Some("amd64")).runs_on("aarch64"));
        assert!(image(None).runs_on("riscv64"));
    }
}
