//! One container: the recipe it is created from, creating and starting it, and
//! what the engine reports about it.
//!
//! The container port is published on 127.0.0.1 at a host port teal picked from
//! the kernel's ephemeral range. teal picks it (instead of letting the engine
//! choose) because the engine gives an ephemeral binding a *new* port every time
//! the container restarts, and the proxy must reach an instance at one stable
//! address for its whole life.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, HealthStatusEnum, HostConfig,
    HostConfigLogConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};

use super::engine::{
    LABEL_DEPLOY_ID, LABEL_IMAGE_ID, LABEL_INSTANCE, LABEL_SERVICE, LABEL_SLOT, LABEL_VERSION,
    container_name, engine_error, is_not_found, short, status_of,
};
use crate::runtime::{ExitInfo, RuntimeError, SlotRequest};
use crate::spec::DockerSpec;

/// Everything needed to create one container, again and again: after a crash
/// that the engine does not restart, or after someone removed it. `Debug`
/// leaves out the create body (its environment holds secret values).
#[derive(Clone)]
pub(super) struct Recipe {
    pub name: String,
    pub index: usize,
    pub image_id: String,
    pub host_port: u16,
    pub restart: String,
    body: ContainerCreateBody,
}

impl std::fmt::Debug for Recipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recipe")
            .field("name", &self.name)
            .field("index", &self.index)
            .field("image_id", &self.image_id)
            .field("host_port", &self.host_port)
            .field("restart", &self.restart)
            .finish_non_exhaustive()
    }
}

impl Recipe {
    /// Instance `index` of the requested slot, running `image_id`, published on
    /// `host_port`.
    pub(super) fn new(
        req: &SlotRequest<'_>,
        docker: &DockerSpec,
        image_id: &str,
        index: usize,
        host_port: u16,
    ) -> Recipe {
        let service = req.service;
        let port = docker.port.to_string();
        let exposed = format!("{port}/tcp");
        let env = service
            .app_env()
            .map(|(k, v)| format!("{k}={v}"))
            .chain([
                format!("PORT={port}"),
                format!("TEAL_VERSION={}", req.version),
                format!("TEAL_SLOT={}", req.slot),
                format!("TEAL_INSTANCE={index}"),
                format!("TEAL_SERVICE={}", service.name),
            ])
            .collect();
        let cmd = docker.command.as_ref().map(|command| {
            command
                .iter()
                .map(|a| a.replace("{version}", req.version).replace("{port}", &port))
                .collect()
        });
        let labels = HashMap::from([
            (LABEL_SERVICE.to_string(), service.name.clone()),
            (LABEL_SLOT.to_string(), req.slot.to_string()),
            (LABEL_INSTANCE.to_string(), index.to_string()),
            (LABEL_VERSION.to_string(), req.version.to_string()),
            (LABEL_IMAGE_ID.to_string(), image_id.to_string()),
            (LABEL_DEPLOY_ID.to_string(), req.deploy_id.to_string()),
        ]);
        let (policy, retries) = restart_policy(&docker.restart);
        let host_config = HostConfig {
            port_bindings: Some(HashMap::from([(
                exposed.clone(),
                Some(vec![PortBinding {
                    host_ip: Some(Ipv4Addr::LOCALHOST.to_string()),
                    host_port: Some(host_port.to_string()),
                }]),
            )])),
            restart_policy: Some(RestartPolicy {
                name: Some(policy),
                maximum_retry_count: retries,
            }),
            log_config: docker
                .log_driver
                .as_ref()
                .map(|driver| HostConfigLogConfig {
                    typ: Some(driver.clone()),
                    config: None,
                }),
            memory: docker.limits.memory.map(|m| m as i64),
            nano_cpus: docker.limits.cpus.map(|c| (c * 1e9) as i64),
            binds: (!docker.volumes.is_empty()).then(|| docker.volumes.clone()),
            network_mode: docker.network.clone(),
            ..HostConfig::default()
        };
        Recipe {
            name: container_name(&service.name, req.slot, index),
            index,
            image_id: image_id.to_string(),
            host_port,
            restart: docker.restart.clone(),
            body: ContainerCreateBody {
                image: Some(image_id.to_string()),
                env: Some(env),
                cmd,
                labels: Some(labels),
                exposed_ports: Some(vec![exposed]),
                host_config: Some(host_config),
                ..ContainerCreateBody::default()
            },
        }
    }

    /// Where the proxy reaches it from the host.
    pub(super) fn published(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.host_port))
    }

    /// Whether the engine's policy would bring the container back after it ended
    /// with `exit` (teal does it instead when the engine will not, e.g. after a
    /// `docker kill`, which the engine counts as a manual stop).
    pub(super) fn restarts_after(&self, exit: &ExitInfo) -> bool {
        match self.restart.as_str() {
            "always" | "unless-stopped" => true,
            "no" => false,
            _ => exit.code != Some(0),
        }
    }

    /// Creates and starts the container. A leftover container of the same name
    /// (teal never tracks two) is removed first. On error nothing is left behind.
    pub(super) async fn launch(&self, docker: &Docker) -> Result<(), LaunchError> {
        let options = || {
            CreateContainerOptionsBuilder::default()
                .name(&self.name)
                .build()
        };
        let created = docker
            .create_container(Some(options()), self.body.clone())
            .await;
        match created {
            Ok(_) => {}
            Err(e) if status_of(&e) == Some(409) => {
                tracing::info!(container = %self.name, "removing a leftover container with the same name");
                remove(docker, &self.name).await;
                docker
                    .create_container(Some(options()), self.body.clone())
                    .await
                    .map_err(|e| LaunchError::classify(&self.name, "creating", e))?;
            }
            Err(e) => return Err(LaunchError::classify(&self.name, "creating", e)),
        }
        if let Err(e) = docker.start_container(&self.name, None).await {
            remove(docker, &self.name).await;
            return Err(LaunchError::classify(&self.name, "starting", e));
        }
        Ok(())
    }
}

/// Why a container could not be launched.
#[derive(Debug)]
pub(super) enum LaunchError {
    /// The host port was taken between picking and binding it: try another.
    PortTaken,
    Failed(RuntimeError),
}

impl LaunchError {
    fn classify(name: &str, what: &str, e: bollard::errors::Error) -> LaunchError {
        let message = short(&e);
        if message.contains("port is already allocated")
            || message.contains("address already in use")
        {
            return LaunchError::PortTaken;
        }
        let text = format!("{what} container {name}: {message}");
        if is_not_found(&e) {
            // No such image or network: the spec names something the engine lacks.
            LaunchError::Failed(RuntimeError::InvalidSpec(text))
        } else {
            LaunchError::Failed(engine_error(format!("{what} container {name}"), e))
        }
    }
}

fn restart_policy(restart: &str) -> (RestartPolicyNameEnum, Option<i64>) {
    match restart {
        "always" => (RestartPolicyNameEnum::ALWAYS, None),
        "unless-stopped" => (RestartPolicyNameEnum::UNLESS_STOPPED, None),
        "no" => (RestartPolicyNameEnum::NO, None),
        other => {
            let retries = other
                .strip_prefix("on-failure:")
                .and_then(|n| n.parse().ok());
            (RestartPolicyNameEnum::ON_FAILURE, retries)
        }
    }
}

/// Stops the container (the engine's SIGTERM, SIGKILL after `grace_secs`) and
/// removes it. Missing is fine: the goal is "not there".
pub(super) async fn stop_and_remove(docker: &Docker, name: &str, grace_secs: i32) {
    let options = StopContainerOptionsBuilder::default().t(grace_secs).build();
    if let Err(e) = docker.stop_container(name, Some(options)).await
        && !is_not_found(&e)
        && status_of(&e) != Some(304)
    {
        tracing::warn!(container = %name, "stop: {}", short(&e));
    }
    remove(docker, name).await;
}

/// Force-removes the container (and its anonymous volumes).
pub(super) async fn remove(docker: &Docker, name: &str) {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    if let Err(e) = docker.remove_container(name, Some(options)).await
        && !is_not_found(&e)
    {
        tracing::warn!(container = %name, "remove: {}", short(&e));
    }
}

/// What the engine says about one container.
#[derive(Debug, Clone, Default)]
pub(super) struct Observed {
    /// Running and not in a restart loop's pause.
    pub running: bool,
    /// The engine will start it again by itself (restart policy at work).
    pub restarting: bool,
    pub exit_code: Option<i64>,
    pub restart_count: u32,
    /// The HEALTHCHECK status, when the image has one.
    pub health: Option<HealthStatusEnum>,
    /// The host port its container port is published on.
    pub host_port: Option<u16>,
}

impl Observed {
    pub(super) fn from_inspect(info: ContainerInspectResponse) -> Observed {
        let state = info.state.unwrap_or_default();
        let restarting = state.restarting.unwrap_or(false);
        let host_port = info
            .host_config
            .as_ref()
            .and_then(|h| h.port_bindings.as_ref())
            .into_iter()
            .chain(
                info.network_settings
                    .as_ref()
                    .and_then(|n| n.ports.as_ref()),
            )
            .flat_map(|ports| ports.values())
            .flatten()
            .flatten()
            .find_map(|b| b.host_port.as_deref().and_then(|p| p.parse().ok()))
            .filter(|p: &u16| *p != 0);
        Observed {
            running: state.running.unwrap_or(false) && !restarting,
            restarting,
            exit_code: state.exit_code,
            restart_count: info.restart_count.unwrap_or(0).max(0) as u32,
            health: state
                .health
                .and_then(|h| h.status)
                .filter(|s| !matches!(s, HealthStatusEnum::NONE | HealthStatusEnum::EMPTY)),
            host_port,
        }
    }

    pub(super) fn exit(&self) -> ExitInfo {
        ExitInfo {
            code: self.exit_code.map(|c| c as i32),
            signal: None,
            left_running: None,
        }
    }
}

/// Inspects a container; `Ok(None)` when it does not exist.
pub(super) async fn observe(docker: &Docker, name: &str) -> Result<Option<Observed>, RuntimeError> {
    match docker.inspect_container(name, None).await {
        Ok(info) => Ok(Some(Observed::from_inspect(info))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(engine_error(format!("inspecting container {name}"), e)),
    }
}
