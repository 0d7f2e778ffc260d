//! Bringing the live version of each service back when `teal serve` starts, before
//! the proxy accepts a single connection.

use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use super::{Attempt, RunningSlot, Runtimes, new_deploy_id, stop_instances};
use crate::health;
use crate::runtime::SlotRequest;
use crate::slot::{Slot, SlotState};
use crate::spec::ServiceSpec;
use crate::state::{Action, HistoryResult, StateCell};

/// A live slot that is running and healthy again.
#[derive(Debug)]
pub struct Restored {
    pub name: String,
    pub spec: ServiceSpec,
    pub slot: Slot,
    pub running: RunningSlot,
}

/// Starts and health-gates the live slot of every service in the saved state.
/// Slots that were standby or staged are recorded as stopped (their processes did
/// not outlive the previous daemon). A service whose live version does not come
/// back healthy keeps its record, so the next start tries again, and is logged.
pub async fn restore_live(
    runtimes: &Runtimes,
    state: &StateCell,
    shutdown: &CancellationToken,
) -> Vec<Restored> {
    let snapshot = state.snapshot();
    let mut restored = Vec::new();
    let mut failures = Vec::new();
    for (name, record) in &snapshot.services {
        let (Some(slot), Some(version)) = (record.active_slot, record.active_version()) else {
            continue;
        };
        let attempt = Attempt {
            id: new_deploy_id(),
            action: Action::Restore,
            version: version.to_string(),
            from_version: Some(version.to_string()),
            slot,
            started: SystemTime::now(),
        };
        tracing::info!(service = %name, %slot, %version, "restoring the live version");
        let runtime = runtimes.for_spec(&record.spec.runtime);
        let started = runtime
            .start(SlotRequest {
                service: &record.spec,
                slot,
                version,
                deploy_id: &attempt.id,
            })
            .await;
        let instances = match started {
            Ok(instances) => instances,
            Err(e) => {
                tracing::error!(service = %name, "could not restore {version}: {e}");
                failures.push((
                    name.clone(),
                    attempt.entry(HistoryResult::Failed, Some(e.to_string())),
                ));
                continue;
            }
        };
        if let Err(e) = health::gate(&instances, &record.spec.health, shutdown).await {
            tracing::error!(service = %name, "restored {version} is not healthy: {e}");
            stop_instances(&instances, super::STOP_GRACE).await;
            failures.push((
                name.clone(),
                attempt.entry(HistoryResult::Failed, Some(e.to_string())),
            ));
            continue;
        }
        tracing::info!(service = %name, %slot, %version, "live version restored");
        restored.push(Restored {
            name: name.clone(),
            spec: record.spec.clone(),
            slot,
            running: RunningSlot {
                version: version.to_string(),
                state: SlotState::Live,
                deploy_id: attempt.id.clone(),
                instances,
            },
        });
    }
    let saved = state.update(|s| {
        for (name, rec) in s.services.iter_mut() {
            for slot in Slot::ALL {
                if rec.active_slot != Some(slot) {
                    rec.slots.get_mut(slot).state = SlotState::Stopped;
                }
            }
            for (failed, entry) in &failures {
                if failed == name {
                    rec.record(entry.clone());
                }
            }
        }
    });
    if let Err(e) = saved {
        tracing::error!("could not save the restored state: {e}");
    }
    restored
}
