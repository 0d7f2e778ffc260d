//! `teal maintenance` and `teal pause`: a change of a service's gates
//! (`state::Gates`), given to the router first and then saved with a history
//! entry; a router that refuses (nginx and a pause) or a failed save leaves
//! both the router and the record as they were. Gates do not take the
//! service's action lock: a deploy runs through maintenance (its new slot is
//! health-checked and switched; requests still get 503 until it is off).

use std::time::SystemTime;

use super::{DeployError, Deployer};
use crate::slot::Slot;
use crate::state::{Action, GateChange, HistoryEntry, HistoryResult};
use crate::wire::GateAnswer;

impl Deployer {
    /// Applies `change` to `name`'s gates.
    pub async fn change_gate(
        &self,
        name: &str,
        change: &GateChange,
    ) -> Result<GateAnswer, DeployError> {
        // One change at a time: two would each save what it read.
        let _one = self.gate_lock.lock().await;
        let record = self
            .record(name)
            .ok_or_else(|| DeployError::UnknownService(name.to_string()))?;
        if let Some(host) = change.host()
            && !record
                .spec
                .hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host))
        {
            return Err(DeployError::Invalid(format!(
                "service {name:?} does not serve host {host:?} (its hosts: {})",
                if record.spec.hosts.is_empty() {
                    "none, it is the default service".to_string()
                } else {
                    record.spec.hosts.join(", ")
                }
            )));
        }
        let started = SystemTime::now();
        let now = HistoryEntry::timestamp(started);
        let (gates, changed) = record.gates.with(change, &now);
        if !changed {
            return Ok(GateAnswer {
                service: name.to_string(),
                gates,
                changed,
            });
        }
        self.router
            .set_gate(&record.spec, &gates)
            .await
            .map_err(DeployError::Route)?;
        let entry = HistoryEntry {
            id: super::context::new_deploy_id(),
            at: now,
            action: action(change),
            version: record.active_version().unwrap_or("-").to_string(),
            from_version: None,
            slot: record.active_slot.unwrap_or(Slot::Blue),
            result: HistoryResult::Applied,
            reason: Some(describe(change)),
            duration_ms: started.elapsed().map_or(0, |d| d.as_millis() as u64),
            image_id: None,
            instances: Vec::new(),
            timeline: Vec::new(),
            verify: None,
        };
        let saved = self.state.update(|s| {
            if let Some(rec) = s.services.get_mut(name) {
                rec.gates = gates.clone();
                rec.record(entry);
            }
        });
        if let Err(error) = saved {
            // The record says the old gates: so must the router.
            if let Err(undo) = self.router.set_gate(&record.spec, &record.gates).await {
                tracing::error!(service = name, "could not restore the gates: {undo}");
            }
            return Err(DeployError::State(error));
        }
        tracing::info!(service = name, change = %describe(change), "gates changed");
        Ok(GateAnswer {
            service: name.to_string(),
            gates,
            changed,
        })
    }
}

fn action(change: &GateChange) -> Action {
    match change {
        GateChange::MaintenanceOn { .. } => Action::MaintenanceOn,
        GateChange::MaintenanceOff { .. } => Action::MaintenanceOff,
        GateChange::Pause { .. } => Action::Pause,
        GateChange::Resume { .. } => Action::Resume,
    }
}

/// The history's reason: which host, and the message or timeout.
fn describe(change: &GateChange) -> String {
    let scope = match change.host() {
        Some(host) => format!("host {host}"),
        None => "every host".to_string(),
    };
    match change {
        GateChange::MaintenanceOn { message, .. } => match message {
            Some(message) => format!("{scope}: {message}"),
            None => scope,
        },
        GateChange::Pause { timeout_ms, .. } => format!(
            "{scope}, requests held up to {}",
            humantime::format_duration(std::time::Duration::from_millis(
                timeout_ms.unwrap_or(crate::state::PAUSE_TIMEOUT.as_millis() as u64)
            ))
        ),
        GateChange::MaintenanceOff { .. } | GateChange::Resume { .. } => scope,
    }
}
