//! `discard`: stop the staged slot without switching. The undo of a `deploy
//! --no-promote`, used when another host of a multi-host deploy failed to stage.
//! Production is never touched; the discard is recorded in the history.

use std::sync::Arc;
use std::time::SystemTime;

use super::context::Attempt;
use super::flow::{drain_before_stop, report};
use super::{ActionGuard, DeployError, Deployer, Progress, Service, stop_instances};
use crate::slot::{Slot, SlotState};
use crate::state::{Action, HistoryResult};
use crate::wire::{Outcome, Step};

impl Deployer {
    /// Takes the staged slot of `service` off the preview listener, stops it and
    /// records why.
    pub async fn discard_staged(
        &self,
        service: Arc<Service>,
        _guard: ActionGuard,
        reason: Option<String>,
        progress: Progress,
    ) -> Result<Outcome, DeployError> {
        let name = service.name.clone();
        let mut version = String::new();
        let result = async {
            let record = self
                .record(&name)
                .ok_or_else(|| DeployError::UnknownService(name.clone()))?;
            let (slot, running) = Slot::ALL
                .into_iter()
                .find_map(|s| {
                    let running = service.running(s)?;
                    (running.state == SlotState::Staged).then_some((s, running))
                })
                .ok_or_else(|| DeployError::NothingToDiscard(name.clone()))?;
            version = running.version.clone();
            progress.step(
                Step::Prepare,
                format!(
                    "discarding staged {slot} ({version}){}",
                    reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
            );
            let attempt = Attempt {
                id: running.deploy_id.clone(),
                action: Action::Discard,
                version: version.clone(),
                from_version: record.active_version().map(str::to_string),
                slot,
                started: SystemTime::now(),
                image: running.instances.iter().find_map(|i| i.image()),
            };
            let live = record
                .active_slot
                .and_then(|s| service.running(s).map(|r| r.backend(s)));
            self.router
                .set_routes(&record.spec, live, None)
                .await
                .map_err(DeployError::Route)?;
            progress.step(Step::Retire, format!("stopping {slot} ({version})"));
            drain_before_stop(&*self.router, &record.spec, slot, &progress).await;
            stop_instances(&running.instances, super::STOP_GRACE).await;
            service.set_running(slot, None);
            let entry = attempt.entry(HistoryResult::Discarded, reason.clone());
            self.state
                .update(|s| {
                    if let Some(rec) = s.services.get_mut(&name) {
                        rec.slots.get_mut(slot).state = SlotState::Stopped;
                        rec.record(entry);
                    }
                })
                .map_err(DeployError::State)?;
            Ok(Outcome::Discarded)
        }
        .await;
        report(&progress, &result, &version);
        result
    }
}
