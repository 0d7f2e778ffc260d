//! One action on one service as it runs: what every step of a deploy, promote or
//! rollback needs at hand (the router, the service's runtime, the state, the
//! service, the spec, the attempt and its progress), so that the steps take this
//! and their own few values instead of long argument lists.
//!
//! It owns the [`Attempt`] (what the action is doing, for its history entry) and
//! the history bookkeeping of one action; everything else it borrows from the
//! [`Deployer`]. Which steps run in which order is not here (`flow.rs`,
//! `switch.rs`, `actions.rs`).

use std::sync::Arc;
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use super::{Deployer, Progress, Service};
use crate::router::Router;
use crate::runtime::Runtime;
use crate::slot::Slot;
use crate::spec::ServiceSpec;
use crate::state::{Action, HistoryEntry, HistoryResult, ServiceRecord, StateCell};

/// One action on one service, with everything its steps reach.
pub(super) struct ActionContext<'a> {
    /// Routes, drains and the verify window's counters.
    pub router: &'a dyn Router,
    /// The runtime of `spec` (process or docker), resolved once for the action.
    pub runtime: Arc<dyn Runtime>,
    /// Where the switch, the switch back and the history entry are persisted.
    pub state: &'a StateCell,
    /// Fires when the daemon stops: health gates, hooks and the verify window
    /// give up.
    pub shutdown: &'a CancellationToken,
    /// The service's running slots.
    pub service: &'a Service,
    /// The spec this action runs with (a deploy's new one, or the recorded one).
    pub spec: &'a ServiceSpec,
    pub attempt: Attempt,
    /// Steps and details as they happen; its timeline goes into the history.
    pub progress: &'a Progress,
}

impl Deployer {
    /// The context of `attempt` on `service`, run with `spec`.
    pub(super) fn context<'a>(
        &'a self,
        service: &'a Service,
        spec: &'a ServiceSpec,
        attempt: Attempt,
        progress: &'a Progress,
    ) -> ActionContext<'a> {
        ActionContext {
            router: self.router.as_ref(),
            runtime: self.runtimes.for_spec(&spec.runtime),
            state: &self.state,
            shutdown: &self.shutdown,
            service,
            spec,
            attempt,
            progress,
        }
    }
}

impl ActionContext<'_> {
    /// The service's record as persisted now.
    pub fn record(&self) -> Option<ServiceRecord> {
        self.state.snapshot().services.get(&self.spec.name).cloned()
    }

    /// Appends a failure to the history (creating the record for a first deploy),
    /// with the timeline so far.
    pub fn record_failure(&self, reason: &str) {
        let entry = self.attempt.entry_in(
            HistoryResult::Failed,
            Some(reason.to_string()),
            self.progress,
        );
        let spec = self.spec;
        let result = self.state.update(|s| {
            s.services
                .entry(spec.name.clone())
                .or_insert_with(|| ServiceRecord::new(spec.clone()))
                .record(entry)
        });
        if let Err(e) = result {
            tracing::error!(service = %spec.name, "could not record the failure in history: {e}");
        }
    }

    /// Completes the history entry the switch recorded (same id), or appends it.
    pub fn finish_entry(&self, entry: HistoryEntry) {
        let spec = self.spec;
        let saved = self.state.update(|s| {
            s.services
                .entry(spec.name.clone())
                .or_insert_with(|| ServiceRecord::new(spec.clone()))
                .finish(entry)
        });
        if let Err(e) = saved {
            tracing::error!(service = %spec.name, "could not record the deploy in history: {e}");
        }
    }
}

/// What one action is doing, for its history entry.
#[derive(Debug, Clone)]
pub(super) struct Attempt {
    pub id: String,
    pub action: Action,
    pub version: String,
    pub from_version: Option<String>,
    pub slot: Slot,
    pub started: SystemTime,
    /// The exact build it runs (docker: image ID), once pinned.
    pub image: Option<String>,
}

impl Attempt {
    pub fn entry(&self, result: HistoryResult, reason: Option<String>) -> HistoryEntry {
        HistoryEntry {
            id: self.id.clone(),
            at: HistoryEntry::timestamp(self.started),
            action: self.action,
            version: self.version.clone(),
            from_version: self.from_version.clone(),
            slot: self.slot,
            result,
            reason,
            duration_ms: self
                .started
                .elapsed()
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            image_id: self.image.clone(),
            instances: Vec::new(),
            timeline: Vec::new(),
            verify: None,
        }
    }

    /// [`Attempt::entry`] with the timeline of `progress` so far.
    pub fn entry_in(
        &self,
        result: HistoryResult,
        reason: Option<String>,
        progress: &Progress,
    ) -> HistoryEntry {
        HistoryEntry {
            timeline: progress.timeline(),
            ..self.entry(result, reason)
        }
    }
}

/// A deploy id: time-ordered and unique within a daemon.
pub(super) fn new_deploy_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!(
        "d{millis:x}{:02x}",
        COUNTER.fetch_add(1, Ordering::Relaxed) % 256
    )
}
