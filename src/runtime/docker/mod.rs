//! The docker runtime: instances are containers on the local Docker engine, reached
//! through bollard over the engine socket (`DOCKER_HOST` honoured).
//!
//! It owns the containers it starts: their names (`<service>-<slot>-<n>`), labels
//! (`teal.service`, `teal.slot`, `teal.version`, `teal.image-id`,
//! `teal.deploy-id`), published ports and supervision. Containers run by image ID,
//! resolved once per deploy, and they outlive the daemon: a restarted daemon adopts
//! the live ones ([`Runtime::adopt`]) and removes the rest ([`Runtime::reconcile`]).
//! It does not health-check over HTTP (the gate does) and does not route.

mod adopt;
mod container;
mod engine;
mod hook;
mod images;
mod instance;
mod logs;
mod ports;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptionsBuilder;
use futures_util::future::join_all;
use futures_util::stream::BoxStream;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use self::container::{LaunchError, Recipe};
pub use self::engine::address as engine_address;
use self::engine::{Engine, LABEL_SERVICE, LABEL_SLOT, engine_error};
pub use self::images::{reference, short_id, split_tag};
pub use self::instance::DockerInstance;
use self::ports::Ports;
use super::{InstanceRef, KnownSlot, LogLine, LogRun, Runtime, RuntimeError, SlotRequest};
use crate::hooks::{HookError, HookReport, HookRequest, Output};
use crate::slot::Slot;
use crate::spec::{DockerSpec, RuntimeSpec, ServiceSpec};

/// Grace for containers stopped because another instance of the same start failed.
const ROLLBACK_GRACE: Duration = Duration::from_secs(2);
/// How many host ports a launch tries when the picked one was taken meanwhile.
const PORT_ATTEMPTS: usize = 3;

/// Runs instances as containers of the engine `DOCKER_HOST` (or the local socket) names.
#[derive(Debug, Default)]
pub struct DockerRuntime {
    engine: Engine,
    ports: Ports,
    /// The networks of the container teal itself runs in (empty when it runs on
    /// the host). On a service's `network`, teal targets `container-ip:port`.
    own_networks: OnceCell<Vec<String>>,
}

impl DockerRuntime {
    /// Connects lazily: nothing talks to the engine before the first docker action.
    pub fn new() -> Self {
        DockerRuntime::default()
    }

    /// Launches instance `index` on a fresh host port and starts watching it.
    async fn launch(
        &self,
        docker: &Docker,
        req: &SlotRequest<'_>,
        spec: &DockerSpec,
        image_id: &str,
        index: usize,
        healthcheck: bool,
    ) -> Result<InstanceRef, RuntimeError> {
        let mut attempts = 0;
        let recipe = loop {
            attempts += 1;
            let port = self.ports.pick().map_err(|error| RuntimeError::Io {
                what: "finding a free loopback port".into(),
                error,
            })?;
            let recipe = Recipe::new(req, spec, image_id, index, port);
            match recipe.launch(docker).await {
                Ok(()) => break recipe,
                Err(LaunchError::PortTaken) if attempts < PORT_ATTEMPTS => {
                    self.ports.release(port);
                }
                Err(LaunchError::PortTaken) => {
                    self.ports.release(port);
                    return Err(RuntimeError::Engine(format!(
                        "container {}: no free host port after {attempts} attempts",
                        recipe.name
                    )));
                }
                Err(LaunchError::Failed(e)) => {
                    self.ports.release(port);
                    return Err(e);
                }
            }
        };
        let addr = self.target(docker, spec, &recipe).await;
        Ok(DockerInstance::watch(
            docker.clone(),
            recipe,
            addr,
            None,
            healthcheck,
            self.ports.clone(),
        ))
    }

    /// Where the proxy reaches a container: its published port on 127.0.0.1, or,
    /// when teal itself runs in a container on the service's network, the
    /// container's address on that network (a gateway container on the app network).
    async fn target(&self, docker: &Docker, spec: &DockerSpec, recipe: &Recipe) -> SocketAddr {
        let Some(network) = &spec.network else {
            return recipe.published();
        };
        let own = self.own_networks.get_or_init(|| own_networks(docker)).await;
        if !own.contains(network) {
            return recipe.published();
        }
        let ip = docker
            .inspect_container(&recipe.name, None)
            .await
            .ok()
            .and_then(|c| c.network_settings)
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(network))
            .and_then(|e| e.ip_address)
            .and_then(|ip| ip.parse().ok());
        match ip {
            Some(ip) => SocketAddr::new(ip, spec.port),
            None => recipe.published(),
        }
    }

    /// The image to run: the pinned ID when it still exists, else the reference.
    async fn image_for(
        &self,
        docker: &Docker,
        req: &SlotRequest<'_>,
        spec: &DockerSpec,
    ) -> Result<String, RuntimeError> {
        match req.image {
            Some(id) if images::exists(docker, id).await? => Ok(id.to_string()),
            Some(id) => Err(RuntimeError::InvalidSpec(format!(
                "image {} of {} {} is no longer on this engine",
                short_id(id),
                req.service.name,
                req.version
            ))),
            None => images::resolve(docker, &images::reference(&spec.image, req.version)).await,
        }
    }

    /// Every container labelled with `service`, optionally only of `slot`.
    async fn containers(
        &self,
        docker: &Docker,
        service: &str,
        slot: Option<Slot>,
    ) -> Result<Vec<ContainerSummary>, RuntimeError> {
        let mut labels = vec![format!("{LABEL_SERVICE}={service}")];
        if let Some(slot) = slot {
            labels.push(format!("{LABEL_SLOT}={slot}"));
        }
        let filters = HashMap::from([("label", labels)]);
        docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(|e| engine_error(format!("listing containers of {service}"), e))
    }

    async fn stop_all(instances: &[InstanceRef]) {
        join_all(instances.iter().map(|i| i.stop(ROLLBACK_GRACE))).await;
    }
}

fn docker_spec(service: &ServiceSpec) -> Result<&DockerSpec, RuntimeError> {
    match &service.runtime {
        RuntimeSpec::Docker(spec) => Ok(spec),
        other => Err(RuntimeError::InvalidSpec(format!(
            "service {}: the docker runtime cannot run a {} service",
            service.name,
            other.kind()
        ))),
    }
}

/// A container's name without the engine's leading '/'.
fn name_of(c: &ContainerSummary) -> String {
    c.names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default()
}

fn label<'a>(c: &'a ContainerSummary, key: &str) -> &'a str {
    c.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
        .unwrap_or("")
}

/// The networks of the container this process runs in, or none on the host.
async fn own_networks(docker: &Docker) -> Vec<String> {
    if !std::path::Path::new("/.dockerenv").exists() {
        return Vec::new();
    }
    let Ok(hostname) = std::fs::read_to_string("/etc/hostname") else {
        return Vec::new();
    };
    docker
        .inspect_container(hostname.trim(), None)
        .await
        .ok()
        .and_then(|c| c.network_settings)
        .and_then(|n| n.networks)
        .map(|n| n.into_keys().collect())
        .unwrap_or_default()
}

#[async_trait]
impl Runtime for DockerRuntime {
    async fn start(&self, req: SlotRequest<'_>) -> Result<Vec<InstanceRef>, RuntimeError> {
        let spec = docker_spec(req.service)?;
        let docker = self.engine.get().await?;
        let image_id = self.image_for(docker, &req, spec).await?;
        let healthcheck = images::has_healthcheck(docker, &image_id).await;
        let launched = join_all(
            (0..req.service.instances)
                .map(|index| self.launch(docker, &req, spec, &image_id, index, healthcheck)),
        )
        .await;
        let mut started = Vec::new();
        let mut failure = None;
        for result in launched {
            match result {
                Ok(instance) => started.push(instance),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        if let Some(e) = failure {
            Self::stop_all(&started).await;
            return Err(e);
        }
        Ok(started)
    }

    async fn resolve(
        &self,
        service: &ServiceSpec,
        version: &str,
    ) -> Result<Option<String>, RuntimeError> {
        let spec = docker_spec(service)?;
        let docker = self.engine.get().await?;
        let reference = images::reference(&spec.image, version);
        images::resolve(docker, &reference).await.map(Some)
    }

    async fn adopt(&self, req: SlotRequest<'_>) -> Result<Vec<InstanceRef>, RuntimeError> {
        self.adopt_slot(req).await
    }

    async fn reconcile(
        &self,
        service: &str,
        known: &[KnownSlot],
    ) -> Result<Vec<String>, RuntimeError> {
        self.remove_leftovers(service, known).await
    }

    async fn run_hook(
        &self,
        req: &HookRequest<'_>,
        output: &Output,
        cancel: &CancellationToken,
    ) -> Result<HookReport, HookError> {
        let engine = |e: RuntimeError| HookError::Engine(e.to_string());
        let spec = docker_spec(req.service).map_err(engine)?;
        let docker = self.engine.get().await.map_err(engine)?;
        let image_id = match req.image {
            Some(id) => id.to_string(),
            None => images::resolve(docker, &images::reference(&spec.image, req.version))
                .await
                .map_err(engine)?,
        };
        hook::run(docker, req, spec, &image_id, output, cancel).await
    }

    async fn prune(&self, candidates: &[String]) -> Result<Vec<String>, RuntimeError> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let docker = self.engine.get().await?;
        Ok(images::prune(docker, candidates).await)
    }

    async fn logs(
        &self,
        service: &str,
        run: &LogRun,
        follow: bool,
    ) -> Result<BoxStream<'static, LogLine>, RuntimeError> {
        let docker = self.engine.get().await?;
        logs::stream(docker, service, run, follow).await
    }
}
