//! `deploy`: prepare the standby slot, run the `pre_deploy` hook, start the new
//! version there, health-gate it, show it on the preview listener, then go live
//! (see `switch.rs`) unless asked to stop at staging.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::context::{ActionContext, Attempt, new_deploy_id};
use super::switch::Checks;
use super::{ActionGuard, DeployError, Deployer, Progress, RunningSlot, Service, stop_instances};
use crate::health;
use crate::router::{DrainReport, Router};
use crate::runtime::SlotRequest;
use crate::slot::{Slot, SlotState};
use crate::spec::{HookPoint, ServiceSpec};
use crate::state::{Action, HistoryResult, ServiceRecord};
use crate::wire::{DeployRequest, Outcome, Step};

/// What a drain that reached its deadline says: the requests still in flight,
/// and the upgraded connections (websockets) it closed then. Every drain of a
/// slot (retiring the live one, replacing, discarding or stopping a standby)
/// waits the service's `drain.timeout` and ends this way.
pub(super) fn timed_out_note(report: &DrainReport) -> String {
    let waited =
        humantime::format_duration(Duration::from_millis(report.waited.as_millis() as u64));
    let mut note = format!(
        "timed out after {waited} with {} request(s) still in flight",
        report.remaining
    );
    if report.upgraded_closed > 0 {
        note.push_str(&format!(
            "; closed {} upgraded connection(s) (websockets get a close frame 1001 \"going away\")",
            report.upgraded_closed
        ));
    }
    note
}

/// Drains `slot` before it is stopped or replaced, up to `drain.timeout`, and
/// says so when it reached the deadline.
pub(super) async fn drain_before_stop(
    router: &dyn Router,
    spec: &ServiceSpec,
    slot: Slot,
    progress: &Progress,
) {
    let report = router.drain(&spec.name, slot, spec.drain.timeout).await;
    if report.timed_out {
        progress.info(format!("drain of {slot} {}", timed_out_note(&report)));
    }
}

impl Deployer {
    /// The full deploy flow. Emits progress and the final `done` event itself.
    /// `req.image` is the exact build the caller wants run (docker: an image ID
    /// it shipped); None resolves `req.version` on this daemon's runtime.
    pub async fn deploy(
        &self,
        service: Arc<Service>,
        _guard: ActionGuard,
        req: DeployRequest,
        progress: Progress,
    ) -> Result<Outcome, DeployError> {
        let version = req.version.clone();
        let result = self
            .deploy_inner(&service, req, Action::Deploy, &progress)
            .await;
        report(&progress, &result, &version);
        result
    }

    /// Deploy without the lock bookkeeping or the final event (shared with rollback).
    /// `req.image` is the exact build to run (a rollback's recorded image ID);
    /// None resolves `req.version` now.
    pub(super) async fn deploy_inner(
        &self,
        service: &Service,
        req: DeployRequest,
        action: Action,
        progress: &Progress,
    ) -> Result<Outcome, DeployError> {
        let DeployRequest {
            mut spec,
            version,
            image: pinned,
            promote,
            secrets,
        } = req;
        validate(&spec, &version, pinned.as_deref())?;
        let record = self.record(&spec.name);
        let active = record.as_ref().and_then(|r| r.active_slot);
        spec.secrets.values = self.secret_values(&spec, action, active, secrets)?;
        let target = active.map(Slot::other).unwrap_or(Slot::Blue);
        let attempt = Attempt {
            id: new_deploy_id(),
            action,
            version: version.clone(),
            from_version: record
                .as_ref()
                .and_then(|r| r.active_version().map(str::to_string)),
            slot: target,
            started: SystemTime::now(),
            image: None,
        };
        let live = match attempt.from_version.as_deref() {
            Some(v) => format!("{} {v}", active.map(Slot::as_str).unwrap_or("")),
            None => "none".into(),
        };
        progress.step(
            Step::Prepare,
            format!("{} {version} → {target} slot (live: {live})", spec.name),
        );
        let mut cx = self.context(service, &spec, attempt, progress);
        let prepared = async {
            self.reconcile(service, &spec, progress).await?;
            cx.attempt.image = match pinned {
                Some(id) => Some(id),
                None => cx
                    .runtime
                    .resolve(&spec, &version)
                    .await
                    .map_err(DeployError::Start)?,
            };
            if let Some(id) = &cx.attempt.image {
                progress.info(format!("runs image {}", short_image(id)));
            }
            cx.clear_slot(record.as_ref()).await
        }
        .await;
        let prepared = match prepared {
            Ok(()) => self.store_secrets(&spec, target, active, progress),
            Err(e) => Err(e),
        };
        if let Err(e) = prepared {
            cx.record_failure(&e.to_string());
            return Err(e);
        }
        // A rollback goes back to what ran before, at once: no hooks, no window.
        let checks = if action == Action::Rollback {
            Checks::NONE
        } else {
            Checks::ALL
        };
        if checks.hooks
            && let Err(e) = cx.run_hook(HookPoint::PreDeploy).await
        {
            cx.record_failure(&e.to_string());
            return Err(e);
        }

        if let Err(e) = cx.stage(record.as_ref()).await {
            cx.discard(record.as_ref()).await;
            cx.record_failure(&e.to_string());
            return Err(e);
        }

        if !promote {
            service.set_state(target, SlotState::Staged);
            let entry = cx.attempt.entry_in(HistoryResult::Staged, None, progress);
            let attempt = &cx.attempt;
            self.state
                .update(|s| {
                    let rec = s
                        .services
                        .entry(spec.name.clone())
                        .or_insert_with(|| ServiceRecord::new(spec.clone()));
                    rec.spec = spec.clone();
                    let slot = rec.slots.get_mut(target);
                    slot.version = Some(version.clone());
                    slot.state = SlotState::Staged;
                    slot.deploy_id = Some(attempt.id.clone());
                    slot.image_id = attempt.image.clone();
                    rec.record(entry);
                })
                .map_err(DeployError::State)?;
            return Ok(Outcome::Staged);
        }

        match cx.go_live(checks).await {
            Ok(outcome) => {
                cx.prune().await;
                Ok(outcome)
            }
            Err(e) if e.after_switch() => Err(e),
            Err(e) => {
                cx.discard(record.as_ref()).await;
                cx.record_failure(&e.to_string());
                Err(e)
            }
        }
    }
}

impl ActionContext<'_> {
    /// Start → health → preview. On error the caller discards the slot.
    async fn stage(&self, record: Option<&ServiceRecord>) -> Result<(), DeployError> {
        let ActionContext {
            service,
            spec,
            progress,
            ..
        } = *self;
        let attempt = &self.attempt;
        let slot = attempt.slot;
        let version = attempt.version.as_str();
        if self.shutdown.is_cancelled() {
            return Err(DeployError::ShuttingDown);
        }
        progress.step(
            Step::Start,
            format!(
                "starting {} instance(s) of {version} in {slot}",
                spec.instances
            ),
        );
        service.set_running(
            slot,
            Some(RunningSlot {
                version: version.to_string(),
                state: SlotState::Starting,
                deploy_id: attempt.id.clone(),
                instances: Vec::new(),
            }),
        );
        let instances = self
            .runtime
            .start(SlotRequest {
                service: spec,
                slot,
                version,
                deploy_id: &attempt.id,
                image: attempt.image.as_deref(),
            })
            .await
            .map_err(DeployError::Start)?;
        for instance in &instances {
            progress.info(format!(
                "instance {} {} on {}",
                instance.index(),
                instance.id(),
                instance.addr()
            ));
        }
        if let Some(waiting) = instances.iter().find_map(|i| i.waiting_for()) {
            progress.info(format!(
                "the image has a HEALTHCHECK: {waiting}; waiting for healthy too"
            ));
        }
        let running = RunningSlot {
            version: version.to_string(),
            state: SlotState::Starting,
            deploy_id: attempt.id.clone(),
            instances: instances.clone(),
        };
        service.set_running(slot, Some(running.clone()));

        progress.step(
            Step::Health,
            format!(
                "waiting for GET {} to answer 2xx/3xx on every instance (deadline {})",
                spec.health.path,
                humantime::format_duration(spec.health.deadline)
            ),
        );
        let gate_started = std::time::Instant::now();
        health::gate(&instances, &spec.health, self.shutdown)
            .await
            .map_err(|e| match e {
                health::GateError::Cancelled => DeployError::ShuttingDown,
                other => DeployError::Health(Box::new(other)),
            })?;
        progress.info(format!(
            "healthy after {}",
            humantime::format_duration(Duration::from_millis(
                gate_started.elapsed().as_millis() as u64
            ))
        ));
        for warning in instances
            .iter()
            .filter_map(|i| health::wildcard(i.as_ref()))
        {
            progress.info(format!("warning: {warning}"));
        }

        if spec.preview.is_some() {
            let live = record
                .and_then(|r| r.active_slot)
                .and_then(|s| service.running(s).map(|r| r.backend(s)));
            self.router
                .set_routes(spec, live, Some(running.backend(slot)))
                .await
                .map_err(DeployError::Route)?;
            let addr = self.router.preview_addr(&spec.name);
            progress.step(
                Step::Preview,
                format!(
                    "{version} is on the preview listener {}",
                    addr.map(|a| a.to_string()).unwrap_or_else(|| "?".into())
                ),
            );
        }
        Ok(())
    }

    /// Makes room in the attempt's slot: a standby or staged copy that runs there
    /// is taken off the preview listener and stopped.
    async fn clear_slot(&self, record: Option<&ServiceRecord>) -> Result<(), DeployError> {
        let ActionContext {
            service, progress, ..
        } = *self;
        let slot = self.attempt.slot;
        let Some(old) = service.running(slot) else {
            return Ok(());
        };
        progress.info(format!(
            "stopping {slot} ({} {}) to make room",
            old.version, old.state
        ));
        if let Some(record) = record {
            let live = record
                .active_slot
                .and_then(|s| service.running(s).map(|r| r.backend(s)));
            self.router
                .set_routes(&record.spec, live, None)
                .await
                .map_err(DeployError::Route)?;
            drain_before_stop(self.router, &record.spec, slot, progress).await;
        }
        stop_instances(&old.instances, super::STOP_GRACE).await;
        service.set_running(slot, None);
        self.state
            .update(|s| {
                if let Some(rec) = s.services.get_mut(&service.name) {
                    rec.slots.get_mut(slot).state = SlotState::Stopped;
                }
            })
            .map_err(DeployError::State)?;
        Ok(())
    }

    /// Undoes a failed stage: routes back to exactly what they were, the
    /// attempt's instances stopped.
    async fn discard(&self, record: Option<&ServiceRecord>) {
        let (service, slot) = (self.service, self.attempt.slot);
        if let Some(record) = record {
            let live = record
                .active_slot
                .and_then(|s| service.running(s).map(|r| r.backend(s)));
            if let Err(e) = self.router.set_routes(&record.spec, live, None).await {
                tracing::error!(service = %service.name, "could not restore routes after a failed deploy: {e}");
            }
        }
        if let Some(running) = service.set_running(slot, None) {
            stop_instances(&running.instances, super::STOP_GRACE).await;
        }
    }
}

/// The final event of an action.
pub(super) fn report(progress: &Progress, result: &Result<Outcome, DeployError>, version: &str) {
    match result {
        Ok(Outcome::Live) => progress.done(
            Outcome::Live,
            Some(version.into()),
            None,
            format!("{version} is live"),
        ),
        Ok(Outcome::Staged) => progress.done(
            Outcome::Staged,
            Some(version.into()),
            None,
            format!("{version} is staged; `teal promote` switches production to it"),
        ),
        Ok(Outcome::Failed) => progress.done(Outcome::Failed, Some(version.into()), None, "failed"),
        Ok(Outcome::Stopped) => progress.done(
            Outcome::Stopped,
            Some(version.into()),
            None,
            format!("{version} stopped"),
        ),
        Ok(Outcome::Discarded) => progress.done(
            Outcome::Discarded,
            Some(version.into()),
            None,
            format!("{version} discarded; production untouched"),
        ),
        Err(e) if e.after_switch() => {
            progress.done(Outcome::Failed, Some(version.into()), None, e.to_string())
        }
        Err(e) => progress.done(
            Outcome::Failed,
            Some(version.into()),
            None,
            format!("{e}; production untouched"),
        ),
    }
}

fn validate(spec: &ServiceSpec, version: &str, pinned: Option<&str>) -> Result<(), DeployError> {
    let ok = !version.is_empty()
        && version.len() <= 128
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'));
    if !ok {
        return Err(DeployError::Invalid(format!(
            "invalid version {version:?}: use 1-128 characters among letters, digits, '.', '-', '_' and '+'"
        )));
    }
    if spec.instances == 0 {
        return Err(DeployError::Invalid("instances must be at least 1".into()));
    }
    if pinned.is_some() && !matches!(spec.runtime, crate::spec::RuntimeSpec::Docker(_)) {
        return Err(DeployError::Invalid(format!(
            "an image ID was given for {}, which runs on the {} runtime (only docker services run images)",
            spec.name,
            spec.runtime.kind()
        )));
    }
    Ok(())
}

/// `sha256:0123456789ab` of an image ID, as `docker images` shows it.
pub(super) fn short_image(id: &str) -> &str {
    let cut = id.find(':').map_or(0, |i| i + 1) + 12;
    &id[..id.len().min(cut)]
}
