//! Taking over what a previous daemon left on the engine: adopting a live slot's
//! containers without a restart (starting missing or stopped ones), and removing
//! the containers of a service that no known slot accounts for.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::ContainerSummary;
use futures_util::future::join_all;

use super::container::{self, Recipe};
use super::engine::{
    LABEL_DEPLOY_ID, LABEL_IMAGE_ID, LABEL_SLOT, LABEL_VERSION, container_name, engine_error,
};
use super::images::{self, short_id};
use super::instance::DockerInstance;
use super::{DockerRuntime, ROLLBACK_GRACE, docker_spec, label, name_of};
use crate::runtime::{InstanceRef, KnownSlot, RuntimeError, SlotRequest};
use crate::spec::DockerSpec;

impl DockerRuntime {
    /// See [`Runtime::adopt`].
    pub(super) async fn adopt_slot(
        &self,
        req: SlotRequest<'_>,
    ) -> Result<Vec<InstanceRef>, RuntimeError> {
        let spec = docker_spec(req.service)?;
        let docker = self.engine.get().await?;
        let service = &req.service.name;
        let mut found: HashMap<String, ContainerSummary> = self
            .containers(docker, service, Some(req.slot))
            .await?
            .into_iter()
            .map(|c| (name_of(&c), c))
            .collect();
        let mut adopted: Vec<InstanceRef> = Vec::new();
        let mut image_id: Option<String> = req.image.map(str::to_string);
        for index in 0..req.service.instances {
            let name = container_name(service, req.slot, index);
            let existing = found.remove(&name).filter(|c| {
                let image = label(c, LABEL_IMAGE_ID);
                req.image.is_none_or(|want| want == image) && label(c, LABEL_VERSION) == req.version
            });
            let adopted_one = match existing {
                Some(c) => self.adopt_one(docker, &req, spec, &c, index).await,
                None => Ok(None),
            };
            let instance = match adopted_one {
                Ok(Some(instance)) => instance,
                Ok(None) | Err(_) => {
                    if let Err(e) = &adopted_one {
                        tracing::warn!(%service, container = %name, "cannot adopt: {e}");
                    }
                    let id = match &image_id {
                        Some(id) => id.clone(),
                        None => self.image_for(docker, &req, spec).await?,
                    };
                    let healthcheck = images::has_healthcheck(docker, &id).await;
                    match self
                        .launch(docker, &req, spec, &id, index, healthcheck)
                        .await
                    {
                        Ok(instance) => {
                            tracing::info!(%service, container = %name, version = %req.version, "live container was missing; started it again");
                            instance
                        }
                        Err(e) => {
                            for i in &adopted {
                                i.release(ROLLBACK_GRACE).await;
                            }
                            return Err(e);
                        }
                    }
                }
            };
            image_id = instance.image();
            adopted.push(instance);
        }
        for (name, _) in found {
            tracing::info!(%service, container = %name, "removing a container the live slot does not need");
            container::remove(docker, &name).await;
        }
        Ok(adopted)
    }

    /// See [`Runtime::reconcile`]; the caller logs the returned lines.
    pub(super) async fn remove_leftovers(
        &self,
        service: &str,
        known: &[KnownSlot],
    ) -> Result<Vec<String>, RuntimeError> {
        // The caller logs the returned lines.
        let docker = self.engine.get().await?;
        let leftovers: Vec<ContainerSummary> = self
            .containers(docker, service, None)
            .await?
            .into_iter()
            .filter(|c| {
                let (slot, deploy) = (label(c, LABEL_SLOT), label(c, LABEL_DEPLOY_ID));
                !known
                    .iter()
                    .any(|k| k.slot.as_str() == slot && k.deploy_id == deploy)
            })
            .collect();
        let removals = leftovers.iter().map(|c| async move {
            let name = name_of(c);
            container::remove(docker, &name).await;
            let line = format!(
                "removed leftover container {name} ({} slot, version {}, deploy {}): not part of the recorded state",
                label(c, LABEL_SLOT),
                label(c, LABEL_VERSION),
                label(c, LABEL_DEPLOY_ID)
            );
            line
        });
        Ok(join_all(removals).await)
    }

    /// Takes over one existing container of a live slot, starting it when it is
    /// stopped. `Ok(None)` when it cannot be used as it is.
    async fn adopt_one(
        &self,
        docker: &Docker,
        req: &SlotRequest<'_>,
        spec: &DockerSpec,
        c: &ContainerSummary,
        index: usize,
    ) -> Result<Option<InstanceRef>, RuntimeError> {
        let name = name_of(c);
        let Some(mut seen) = container::observe(docker, &name).await? else {
            return Ok(None);
        };
        let Some(host_port) = seen.host_port else {
            return Ok(None);
        };
        let image_id = label(c, LABEL_IMAGE_ID).to_string();
        if !seen.running && !seen.restarting {
            tracing::info!(service = %req.service.name, container = %name, "live container was stopped; starting it");
            docker
                .start_container(&name, None)
                .await
                .map_err(|e| engine_error(format!("starting container {name}"), e))?;
            seen = container::observe(docker, &name).await?.unwrap_or(seen);
        } else {
            tracing::info!(service = %req.service.name, container = %name, image = %short_id(&image_id), "adopted the running live container without a restart");
        }
        self.ports.hold(host_port);
        // The recipe keeps the labels the container was created with.
        let original = SlotRequest {
            deploy_id: label(c, LABEL_DEPLOY_ID),
            ..req.clone()
        };
        let recipe = Recipe::new(&original, spec, &image_id, index, host_port);
        let addr = self.target(docker, spec, &recipe).await;
        let healthcheck = images::has_healthcheck(docker, &image_id).await;
        Ok(Some(DockerInstance::watch(
            docker.clone(),
            recipe,
            addr,
            Some(seen),
            healthcheck,
            self.ports.clone(),
        )))
    }
}
