//! The switch and what follows it: move production to the new slot in one atomic
//! router step, persist, drain the old slot, then keep it warm or stop it.

use super::{Attempt, DeployError, Deployer, Progress, Service, stop_instances};
use crate::api::wire::{Outcome, Step};
use crate::slot::{Slot, SlotState};
use crate::spec::ServiceSpec;
use crate::state::{HistoryResult, ServiceRecord, SlotRecord};

impl Deployer {
    /// Switches production of `service` to `attempt.slot`, which must be running and
    /// healthy. On error before the switch took effect, routes are as they were and
    /// the caller decides what to do with the new slot.
    pub(super) async fn switch_to(
        &self,
        service: &Service,
        spec: &ServiceSpec,
        attempt: &Attempt,
        progress: &Progress,
    ) -> Result<Outcome, DeployError> {
        let to = attempt.slot;
        let record = self.record(&spec.name);
        let from = record
            .as_ref()
            .and_then(|r| r.active_slot)
            .filter(|s| *s != to);
        let new = service
            .running(to)
            .ok_or_else(|| DeployError::Invalid(format!("slot {to} is not running")))?;
        let old = from.and_then(|s| service.running(s));
        let keep = spec.drain.keep_previous;
        let preview_after = match (keep, from, &old) {
            (true, Some(slot), Some(old)) => Some(old.backend(slot)),
            _ => None,
        };

        progress.step(Step::Switch, format!("production → {to} ({})", new.version));
        self.router
            .set_routes(spec, Some(new.backend(to)), preview_after)
            .await
            .map_err(DeployError::Route)?;
        service.set_state(to, SlotState::Live);

        progress.step(Step::Persist, "recording the new live slot");
        let mut entry = attempt.entry(HistoryResult::Live, None);
        entry.instances = new.instances.iter().map(|i| i.id()).collect();
        let image_id = new
            .instances
            .iter()
            .find_map(|i| i.image())
            .or_else(|| attempt.image.clone());
        entry.image_id = image_id.clone();
        let saved = self.state.update(|s| {
            let rec = s
                .services
                .entry(spec.name.clone())
                .or_insert_with(|| ServiceRecord::new(spec.clone()));
            let was_live = rec.active_version().map(str::to_string);
            if rec.active_slot != Some(to) {
                rec.previous_version = was_live;
                rec.previous_image_id = rec
                    .active_slot
                    .and_then(|s| rec.slots.get(s).image_id.clone());
            }
            rec.spec = spec.clone();
            rec.active_slot = Some(to);
            *rec.slots.get_mut(to) = SlotRecord {
                version: Some(new.version.clone()),
                state: SlotState::Live,
                deploy_id: Some(new.deploy_id.clone()),
                image_id,
            };
            if let Some(from) = from {
                rec.slots.get_mut(from).state = if keep && old.is_some() {
                    SlotState::Standby
                } else {
                    SlotState::Stopped
                };
            }
            rec.record(entry);
        });
        if let Err(e) = saved {
            // Not persisted means not done: put production back where the disk says it is.
            let back = from.and_then(|s| old.as_ref().map(|o| o.backend(s)));
            let back_spec = record.as_ref().map(|r| &r.spec).unwrap_or(spec);
            if let Err(re) = self.router.set_routes(back_spec, back, None).await {
                tracing::error!(service = %spec.name, "could not switch back after a failed save: {re}");
            }
            service.set_state(to, SlotState::Starting);
            return Err(DeployError::State(e));
        }

        if let (Some(from), Some(old)) = (from, old) {
            self.retire(service, spec, from, &old.version, old.instances, progress)
                .await;
        }
        Ok(Outcome::Live)
    }

    /// Drain the old slot, then keep it warm for rollback or stop it.
    async fn retire(
        &self,
        service: &Service,
        spec: &ServiceSpec,
        slot: Slot,
        version: &str,
        instances: Vec<crate::runtime::InstanceRef>,
        progress: &Progress,
    ) {
        progress.step(
            Step::Drain,
            format!(
                "draining {slot} ({version}), up to {}",
                humantime::format_duration(spec.drain.timeout)
            ),
        );
        let report = self
            .router
            .drain(&spec.name, slot, spec.drain.timeout)
            .await;
        let waited = humantime::format_duration(std::time::Duration::from_millis(
            report.waited.as_millis() as u64,
        ));
        if report.timed_out {
            progress.info(format!(
                "drain timed out after {waited} with {} request(s) still in flight",
                report.remaining
            ));
        } else {
            progress.info(format!("drained in {waited}"));
        }
        if spec.drain.keep_previous {
            service.set_state(slot, SlotState::Standby);
            progress.step(
                Step::Retire,
                format!("keeping {slot} ({version}) running for an instant rollback"),
            );
        } else {
            progress.step(Step::Retire, format!("stopping {slot} ({version})"));
            stop_instances(&instances, super::STOP_GRACE).await;
            service.set_running(slot, None);
        }
    }
}
