//! `run_in = "image"` hooks: a one-off container of the new version's image
//! (by image ID), with the service's volumes, network and limits, the hook's
//! environment, no published port and no restart policy. The hook's command
//! replaces the image's entrypoint. Its output is streamed line by line; the
//! container is removed afterwards, whatever happened (also on timeout and on
//! daemon shutdown, after a kill).

use std::collections::HashMap;
use std::time::Instant;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::engine::short;
use super::logs::Lines;
use crate::hooks::{HookError, HookReport, HookRequest, Output};
use crate::spec::DockerSpec;

/// Labels on hook containers (not `teal.service`: they are no slot's instances).
const LABEL_HOOK_OF: &str = "teal.hook-of";
const LABEL_HOOK: &str = "teal.hook";

/// Runs `req` in a container of `image_id`; see the module doc.
pub(super) async fn run(
    docker: &Docker,
    req: &HookRequest<'_>,
    spec: &DockerSpec,
    image_id: &str,
    output: &Output,
    cancel: &CancellationToken,
) -> Result<HookReport, HookError> {
    let started = Instant::now();
    let name = container_name(&req.service.name, req.point.as_str());
    let engine =
        |what: &str, e: BollardError| HookError::Engine(format!("{what} {name}: {}", short(&e)));
    let body = ContainerCreateBody {
        image: Some(image_id.to_string()),
        entrypoint: Some(req.command[..1].to_vec()),
        cmd: Some(req.command[1..].to_vec()),
        env: Some(req.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(HashMap::from([
            (LABEL_HOOK_OF.to_string(), req.service.name.clone()),
            (LABEL_HOOK.to_string(), req.point.as_str().to_string()),
        ])),
        host_config: Some(HostConfig {
            binds: (!spec.volumes.is_empty()).then(|| spec.volumes.clone()),
            network_mode: spec.network.clone(),
            memory: spec.limits.memory.map(|m| m as i64),
            nano_cpus: spec.limits.cpus.map(|c| (c * 1e9) as i64),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| engine("creating hook container", e))?;

    let ran = async {
        docker
            .start_container(&name, None)
            .await
            .map_err(|e| engine("starting hook container", e))?;
        let mut logs = docker.logs(
            &name,
            Some(
                LogsOptionsBuilder::default()
                    .stdout(true)
                    .stderr(true)
                    .follow(true)
                    .build(),
            ),
        );
        let mut lines = Lines::default();
        // Ends when the container's output ends, i.e. when it exited.
        while let Some(Ok(chunk)) = logs.next().await {
            for line in lines.push(&chunk) {
                output.line(&line);
            }
        }
        for line in lines.finish() {
            output.line(&line);
        }
        let code = match docker.wait_container(&name, None).next().await {
            Some(Ok(answer)) => answer.status_code,
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(engine("waiting for hook container", e)),
            None => return Err(HookError::Engine(format!("hook container {name} vanished"))),
        };
        Ok(code)
    };
    let ended = tokio::select! {
        code = ran => Some(code),
        _ = tokio::time::sleep(req.timeout) => None,
        _ = cancel.cancelled() => None,
    };
    let removed = docker
        .remove_container(
            &name,
            Some(
                RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .v(true)
                    .build(),
            ),
        )
        .await;
    if let Err(e) = removed {
        tracing::warn!(container = %name, "could not remove the hook container: {}", short(&e));
    }
    let duration = started.elapsed();
    match ended {
        Some(Ok(0)) => Ok(HookReport {
            duration,
            lines: output.lines(),
        }),
        Some(Ok(code)) => Err(HookError::Failed {
            status: format!("exit code {code}"),
            duration,
            tail: output.tail(),
        }),
        Some(Err(e)) => Err(e),
        None if cancel.is_cancelled() => Err(HookError::Cancelled),
        None => Err(HookError::TimedOut {
            timeout: req.timeout,
            tail: output.tail(),
        }),
    }
}

/// `<service>-hook-<point>-<time><pid>`: unique enough for one-at-a-time actions.
fn container_name(service: &str, point: &str) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!(
        "{service}-hook-{}-{millis:x}{:x}",
        point.replace('_', "-"),
        std::process::id()
    )
}
