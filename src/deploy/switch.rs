//! The switch and what follows it: the `pre_switch` hook, moving production to the
//! new slot in one atomic router step, persisting, the `post_switch` hook, the
//! verify window, draining and retiring the old slot, the `post_retire` hook, and
//! the final history entry.
//!
//! Failures before the switch leave production untouched and are the caller's to
//! undo. Failures after it (a failed window, a post hook with
//! `rollback_on_failure`) switch production back (`switch_back.rs`) and are
//! recorded there.

use super::context::ActionContext;
use super::switch_back::Previous;
use super::verify::Judged;
use super::{DeployError, RunningSlot, stop_instances};
use crate::router::ErrorBudget;
use crate::slot::{Slot, SlotState};
use crate::spec::HookPoint;
use crate::state::{HistoryResult, ServiceRecord, SlotRecord};
use crate::wire::{Outcome, Step};

/// What a switch runs around itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Checks {
    /// The `pre_switch`, `post_switch` and `post_retire` hooks.
    pub hooks: bool,
    /// The verify window.
    pub verify: bool,
}

impl Checks {
    /// A deploy or promote: everything the spec asks for.
    pub const ALL: Checks = Checks {
        hooks: true,
        verify: true,
    };
    /// A rollback: back to what ran before, at once.
    pub const NONE: Checks = Checks {
        hooks: false,
        verify: false,
    };
}

impl ActionContext<'_> {
    /// Moves production of the service to the attempt's slot (running and
    /// healthy) with everything `checks` asks for around it. Errors before the
    /// switch leave the routes as they were (the caller decides about the new
    /// slot); errors after it are [`DeployError::after_switch`] and already
    /// recorded.
    pub(super) async fn go_live(&self, checks: Checks) -> Result<Outcome, DeployError> {
        let ActionContext {
            service,
            spec,
            progress,
            ..
        } = *self;
        let to = self.attempt.slot;
        let record = self.record();
        let previous = record.as_ref().and_then(|record| {
            let slot = record.active_slot.filter(|s| *s != to)?;
            let running = service.running(slot)?;
            Some(Previous {
                slot,
                running,
                record: record.clone(),
            })
        });
        if checks.hooks {
            self.run_hook(HookPoint::PreSwitch).await?;
        }
        let verify = spec.verify.as_ref().filter(|_| checks.verify);
        // Armed before the switch, so the window counts the very first request.
        let watch = match (verify, &previous) {
            (Some(v), Some(p)) => self.router.watch(
                &spec.name,
                to,
                Some(p.slot),
                ErrorBudget {
                    max_error_rate: v.max_error_rate,
                    min_requests: v.min_requests,
                },
            ),
            _ => None,
        };

        self.switch_to().await?;
        let mut notes = Vec::new();

        if checks.hooks
            && let Err(e) = self.run_hook(HookPoint::PostSwitch).await
        {
            match (&previous, spec.hooks.rollback_on_failure) {
                (Some(p), true) => {
                    return Err(self.switch_back(p, e.to_string(), None, watch).await);
                }
                _ => notes.push(e.to_string()),
            }
        }

        let verified = match verify {
            None => None,
            Some(v) => match (&previous, watch.as_ref()) {
                (None, _) => Some(Judged::skipped(
                    "no previous version to go back to",
                    progress,
                )),
                (Some(_), None) => Some(Judged::skipped(
                    "this router cannot watch traffic (verification needs the builtin router)",
                    progress,
                )),
                (Some(_), Some(watch)) => Some(self.verify_window(v, watch).await),
            },
        };
        // Only a window with somewhere to go back to can fail.
        if let Some(reason) = verified.as_ref().and_then(Judged::rollback_reason)
            && let Some(p) = &previous
        {
            return Err(self.switch_back(p, reason, verified.clone(), watch).await);
        }
        // A request of the window that answered after the verdict may still have
        // crossed the budget (and switched back): that is a failed window too.
        if let Some(watch) = watch
            && watch.disarm()
            && let Some(p) = &previous
        {
            let mut judged = verified.clone();
            if let Some(j) = judged.as_mut() {
                j.record.verdict = crate::state::Verdict::Failed;
                j.record.reason = Some("error budget crossed as the window ended".into());
            }
            let reason = "verify failed: error budget crossed as the window ended";
            return Err(self.switch_back(p, reason.into(), judged, None).await);
        }

        let mut retired_warm = false;
        if let Some(p) = &previous {
            retired_warm = self.retire(p.slot, &p.running).await;
        }

        if checks.hooks
            && let Err(e) = self.run_hook(HookPoint::PostRetire).await
        {
            match (&previous, spec.hooks.rollback_on_failure) {
                (Some(p), true) if retired_warm => {
                    return Err(self.switch_back(p, e.to_string(), verified, None).await);
                }
                (Some(_), true) => notes.push(format!(
                    "{e} (not switched back: the previous slot was stopped, keep_previous = false)"
                )),
                _ => notes.push(e.to_string()),
            }
        }

        let reason = (!notes.is_empty()).then(|| notes.join("; "));
        let mut entry = self.attempt.entry_in(HistoryResult::Live, reason, progress);
        entry.verify = verified.map(|j| j.record);
        self.finish_entry(entry);
        Ok(Outcome::Live)
    }

    /// The switch itself: production to the attempt's slot (the old slot, if
    /// kept, to the preview listener), then the new state persisted with a
    /// history entry that [`ActionContext::finish_entry`] completes later. On
    /// error the routes are as they were.
    async fn switch_to(&self) -> Result<(), DeployError> {
        let ActionContext {
            service,
            spec,
            progress,
            ..
        } = *self;
        let attempt = &self.attempt;
        let to = attempt.slot;
        let record = self.record();
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
        if let Some(from) = from {
            // Warm and ready to take production back (verify window, rollback)
            // until it is retired.
            service.set_state(from, SlotState::Standby);
        }

        progress.step(Step::Persist, "recording the new live slot");
        let mut entry = attempt.entry_in(HistoryResult::Live, None, progress);
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
            if let Some(from) = from {
                service.set_state(from, SlotState::Live);
            }
            return Err(DeployError::State(e));
        }
        Ok(())
    }

    /// Drains the old slot, then keeps it warm for rollback or stops it. Returns
    /// true when it is kept running.
    async fn retire(&self, slot: Slot, old: &RunningSlot) -> bool {
        let ActionContext {
            service,
            spec,
            progress,
            ..
        } = *self;
        let version = &old.version;
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
        if report.timed_out {
            let note = super::flow::timed_out_note(&report);
            progress.info(format!("drain {note}"));
            progress.note(note);
        } else {
            let waited = humantime::format_duration(std::time::Duration::from_millis(
                report.waited.as_millis() as u64,
            ));
            progress.info(format!("drained in {waited}"));
        }
        if spec.drain.keep_previous {
            service.set_state(slot, SlotState::Standby);
            progress.step(
                Step::Retire,
                format!("keeping {slot} ({version}) running for an instant rollback"),
            );
            true
        } else {
            progress.step(Step::Retire, format!("stopping {slot} ({version})"));
            stop_instances(&old.instances, super::STOP_GRACE).await;
            service.set_running(slot, None);
            false
        }
    }
}
