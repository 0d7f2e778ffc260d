//! `promote` and `rollback`: switches to a slot that is already running, or (for a
//! rollback whose previous slot is gone) a redeploy of the previous version.

use std::sync::Arc;
use std::time::SystemTime;

use super::context::{Attempt, new_deploy_id};
use super::flow::report;
use super::switch::Checks;
use super::{ActionGuard, DeployError, Deployer, Progress, Service};
use crate::health;
use crate::slot::SlotState;
use crate::spec::ServiceSpec;
use crate::state::Action;
use crate::wire::{DeployRequest, Outcome, Step};

impl Deployer {
    /// Switches production to the slot staged by `deploy --no-promote`.
    pub async fn promote(
        &self,
        service: Arc<Service>,
        _guard: ActionGuard,
        progress: Progress,
    ) -> Result<Outcome, DeployError> {
        let name = service.name.clone();
        let result = async {
            let record = self
                .record(&name)
                .ok_or_else(|| DeployError::UnknownService(name.clone()))?;
            let slot = record
                .active_slot
                .map(|s| s.other())
                .into_iter()
                .chain(crate::slot::Slot::ALL)
                .find(|s| {
                    service
                        .running(*s)
                        .is_some_and(|r| r.state == SlotState::Staged)
                })
                .ok_or_else(|| DeployError::NothingToPromote(name.clone()))?;
            let running = service
                .running(slot)
                .ok_or_else(|| DeployError::NothingToPromote(name.clone()))?;
            progress.step(
                Step::Prepare,
                format!("promoting {slot} ({})", running.version),
            );
            let attempt = Attempt {
                id: running.deploy_id.clone(),
                action: Action::Promote,
                version: running.version.clone(),
                from_version: record.active_version().map(str::to_string),
                slot,
                started: SystemTime::now(),
                image: running.instances.iter().find_map(|i| i.image()),
            };
            self.switch_recorded(&service, &record.spec, attempt, &progress, Checks::ALL)
                .await
                .map(|o| (o, running.version))
        }
        .await;
        let version = result.as_ref().map(|(_, v)| v.clone()).unwrap_or_default();
        let result = result.map(|(o, _)| o);
        report(&progress, &result, &version);
        result
    }

    /// Goes back to the previous version: an instant switch when its slot still
    /// runs, otherwise a redeploy of it (with `spec` when given, else the last spec).
    pub async fn rollback(
        &self,
        service: Arc<Service>,
        _guard: ActionGuard,
        spec: Option<ServiceSpec>,
        progress: Progress,
    ) -> Result<Outcome, DeployError> {
        let name = service.name.clone();
        let mut version = String::new();
        let result = async {
            let record = self
                .record(&name)
                .ok_or_else(|| DeployError::UnknownService(name.clone()))?;
            let active = record
                .active_slot
                .ok_or_else(|| DeployError::NothingToRollback(name.clone()))?;
            let standby = active.other();
            if let Some(running) = service
                .running(standby)
                .filter(|r| r.state == SlotState::Standby)
            {
                version = running.version.clone();
                progress.step(
                    Step::Prepare,
                    format!(
                        "rolling back to {standby} ({}), still running",
                        running.version
                    ),
                );
                let mut healthy = true;
                for instance in &running.instances {
                    let probe = health::probe(instance.addr(), &record.spec.health).await;
                    if !probe.is_healthy() {
                        progress.info(format!(
                            "instance {} of {standby} is not healthy: {probe}",
                            instance.index()
                        ));
                        healthy = false;
                    }
                }
                if healthy {
                    let attempt = Attempt {
                        id: new_deploy_id(),
                        action: Action::Rollback,
                        version: running.version.clone(),
                        from_version: record.active_version().map(str::to_string),
                        slot: standby,
                        started: SystemTime::now(),
                        image: running.instances.iter().find_map(|i| i.image()),
                    };
                    return self
                        .switch_recorded(&service, &record.spec, attempt, &progress, Checks::NONE)
                        .await;
                }
            }
            let previous = record
                .previous_version
                .clone()
                .ok_or_else(|| DeployError::NothingToRollback(name.clone()))?;
            version = previous.clone();
            progress.info(format!(
                "the previous slot is not running; redeploying {previous}"
            ));
            let req = DeployRequest {
                spec: spec.unwrap_or_else(|| record.spec.clone()),
                version: previous,
                // The recorded build, not whatever the version's tag names now.
                image: record.previous_image_id.clone(),
                promote: true,
                // From the store: what the live slot was given.
                secrets: Default::default(),
            };
            self.deploy_inner(&service, req, Action::Rollback, &progress)
                .await
        }
        .await;
        report(&progress, &result, &version);
        result
    }

    /// Goes live on a slot that already runs; a failure before the switch goes
    /// into the history (one after it recorded itself).
    async fn switch_recorded(
        &self,
        service: &Service,
        spec: &ServiceSpec,
        attempt: Attempt,
        progress: &Progress,
        checks: Checks,
    ) -> Result<Outcome, DeployError> {
        let cx = self.context(service, spec, attempt, progress);
        let outcome = cx.go_live(checks).await;
        if let Err(e) = &outcome
            && !e.after_switch()
        {
            cx.record_failure(&e.to_string());
        }
        outcome
    }
}
