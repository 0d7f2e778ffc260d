//! The switch back: production returns to the previous slot after a failure past
//! the switch (a failed verify window, or a post hook with
//! `rollback_on_failure`). Routes, state and history go back to what they were
//! before the deploy, but for the history entry, which records the failure; then
//! the new slot is drained and stopped.
//!
//! Deciding that production goes back is not here (`switch.rs`, `verify.rs`).

use super::context::ActionContext;
use super::verify::Judged;
use super::{DeployError, RunningSlot, stop_instances};
use crate::router::Watch;
use crate::slot::{Slot, SlotState};
use crate::state::{HistoryResult, ServiceRecord};
use crate::wire::Step;

/// The live slot a switch moved away from, and the record before the switch.
pub(super) struct Previous {
    pub slot: Slot,
    pub running: RunningSlot,
    pub record: ServiceRecord,
}

impl ActionContext<'_> {
    /// Production back to the previous slot after a failure past the switch:
    /// routes, state and history as before the deploy (but for the entry, which
    /// records the failure), then the new slot drained and stopped. Returns the
    /// error the action ends with. `watch`, when armed, gives the final figures
    /// of the window once the new slot has drained.
    pub(super) async fn switch_back(
        &self,
        previous: &Previous,
        reason: String,
        judged: Option<Judged>,
        watch: Option<Watch>,
    ) -> DeployError {
        let ActionContext {
            service,
            spec,
            progress,
            ..
        } = *self;
        let attempt = &self.attempt;
        let (to, from) = (previous.slot, attempt.slot);
        let version = previous.running.version.clone();
        progress.step(
            Step::SwitchBack,
            format!("production → {to} ({version}): {reason}"),
        );
        let routed = self
            .router
            .set_routes(
                &previous.record.spec,
                Some(previous.running.backend(to)),
                None,
            )
            .await
            .map_err(DeployError::Route);
        if let Err(e) = routed {
            progress.fail_step(e.to_string());
            let mut entry = attempt.entry_in(HistoryResult::Live, Some(reason.clone()), progress);
            entry.verify = judged.map(|j| j.record);
            self.finish_entry(entry);
            return DeployError::SwitchBackFailed {
                reason,
                version,
                error: Box::new(e),
            };
        }
        service.set_state(to, SlotState::Live);
        service.set_state(from, SlotState::Starting);
        let before = &previous.record;
        let saved = self.state.update(|s| {
            if let Some(rec) = s.services.get_mut(&spec.name) {
                rec.spec = before.spec.clone();
                rec.active_slot = Some(to);
                rec.previous_version = before.previous_version.clone();
                rec.previous_image_id = before.previous_image_id.clone();
                rec.slots.get_mut(to).state = SlotState::Live;
                rec.slots.get_mut(from).state = SlotState::Stopped;
            }
        });
        if let Err(e) = saved {
            tracing::error!(service = %spec.name, "could not record the switch back: {e}");
        }
        progress.note(format!("back on {version}"));

        progress.step(
            Step::Drain,
            format!(
                "draining {from} ({}), up to {}",
                attempt.version,
                humantime::format_duration(spec.drain.timeout)
            ),
        );
        self.router
            .drain(&spec.name, from, spec.drain.timeout)
            .await;
        progress.step(
            Step::Retire,
            format!("stopping {from} ({})", attempt.version),
        );
        if let Some(running) = service.set_running(from, None) {
            stop_instances(&running.instances, super::STOP_GRACE).await;
        }

        let mut record = judged.map(|j| j.record);
        if let (Some(record), Some(watch)) = (record.as_mut(), watch.as_ref()) {
            // Every request the new slot took, now that none is in flight.
            let last = watch.counters().snapshot();
            record.requests = last.requests;
            record.errors = last.errors;
            record.upstream_failures = last.upstream_failures;
            progress.info(format!(
                "the new slot answered {} of {} request(s) with an error before production went back",
                last.errors, last.requests
            ));
        }
        drop(watch);
        let mut entry = attempt.entry_in(HistoryResult::Failed, Some(reason.clone()), progress);
        entry.verify = record;
        self.finish_entry(entry);
        DeployError::RolledBack { reason, version }
    }
}
