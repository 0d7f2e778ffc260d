//! Bringing the live version of each service back when `teal serve` starts, before
//! the proxy accepts a single connection.
//!
//! Live slots are adopted through the runtime: containers and processes that
//! outlived the previous daemon keep running untouched, missing ones are started
//! again. Whatever else runs (an
//! interrupted deploy's standby, a kept-warm previous version) is removed by
//! [`Deployer::reconcile_all`] once the proxy serves, so removing it never
//! lengthens the restart gap; every action reconciles its service the same way
//! before it starts.

use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use super::context::{Attempt, new_deploy_id};
use super::{DeployError, Deployer, Progress, RunningSlot, Runtimes, Service};
use crate::health;
use crate::runtime::{InstanceRef, KnownSlot, SlotRequest};
use crate::slot::{Slot, SlotState};
use crate::spec::ServiceSpec;
use crate::state::{Action, HistoryResult, SecretStore, StateCell};

/// A live slot that is running and healthy again.
#[derive(Debug)]
pub struct Restored {
    pub name: String,
    pub spec: ServiceSpec,
    pub slot: Slot,
    pub running: RunningSlot,
}

/// Adopts (or starts) and health-gates the live slot of every service in the saved
/// state. Slots that were
/// standby or staged are recorded as stopped. A service whose live version does
/// not come back healthy keeps its record, so the next start tries again, and is
/// logged.
pub async fn restore_live(
    runtimes: &Runtimes,
    state: &StateCell,
    shutdown: &CancellationToken,
) -> Vec<Restored> {
    let snapshot = state.snapshot();
    let secret_store = SecretStore::new(state.store().dir());
    let mut restored = Vec::new();
    let mut failures = Vec::new();
    for (name, record) in &snapshot.services {
        let runtime = runtimes.for_spec(&record.spec.runtime);
        let (Some(slot), Some(version)) = (record.active_slot, record.active_version()) else {
            continue;
        };
        let live = record.slots.get(slot);
        if live.state == SlotState::Stopped {
            // Stopped on purpose (`teal stop`): the next deploy brings it back.
            tracing::info!(service = %name, %slot, %version, "the live version was stopped on purpose; not restoring it");
            continue;
        }
        // Adopted instances keep the deploy id they were started with.
        let deploy_id = live.deploy_id.clone().unwrap_or_else(new_deploy_id);
        let attempt = Attempt {
            id: new_deploy_id(),
            action: Action::Restore,
            version: version.to_string(),
            from_version: Some(version.to_string()),
            slot,
            started: SystemTime::now(),
            image: live.image_id.clone(),
        };
        let spec = match super::secrets::with_stored_secrets(&secret_store, record, slot) {
            Ok(spec) => spec,
            Err(e) => {
                tracing::error!(service = %name, "could not restore {version}: {e}");
                failures.push((name.clone(), attempt.entry(HistoryResult::Failed, Some(e))));
                continue;
            }
        };
        tracing::info!(service = %name, %slot, %version, "restoring the live version");
        let started = runtime
            .adopt(SlotRequest {
                service: &spec,
                slot,
                version,
                deploy_id: &deploy_id,
                image: live.image_id.as_deref(),
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
        if let Err(e) = health::gate(&instances, &spec.health, shutdown).await {
            tracing::error!(service = %name, "restored {version} is not healthy: {e}");
            // Let go without destroying; the reconcile after the proxy binds
            // removes what no slot accounts for.
            release(&instances).await;
            failures.push((
                name.clone(),
                attempt.entry(HistoryResult::Failed, Some(e.to_string())),
            ));
            continue;
        }
        tracing::info!(service = %name, %slot, %version, "live version restored");
        restored.push(Restored {
            name: name.clone(),
            spec,
            slot,
            running: RunningSlot {
                version: version.to_string(),
                state: SlotState::Live,
                deploy_id,
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

async fn release(instances: &[InstanceRef]) {
    futures_util::future::join_all(instances.iter().map(|i| i.release(super::STOP_GRACE))).await;
}

impl Deployer {
    /// Removes what the runtimes run outside the slots this daemon runs, for every
    /// service (at daemon start, once the proxy serves), and for services only a
    /// runtime's records still name. A service busy with an action is skipped:
    /// every action reconciles it first anyway.
    pub async fn reconcile_all(&self) {
        let services: Vec<_> = self.lock_services().values().cloned().collect();
        for service in services {
            let Some(_guard) = service.try_begin() else {
                continue;
            };
            let Some(record) = self.record(&service.name) else {
                continue;
            };
            let progress = Progress::silent(&service.name);
            if let Err(e) = self.reconcile(&service, &record.spec, &progress).await {
                tracing::error!(service = %service.name, "could not reconcile with the runtime: {e}");
            }
        }
        // Instances of a service the state does not name (a state file reset by
        // hand): no slot accounts for them, so they stop.
        let known: Vec<String> = self.lock_services().keys().cloned().collect();
        for runtime in [&self.runtimes.process, &self.runtimes.docker] {
            for name in runtime.recorded_services() {
                if known.contains(&name) {
                    continue;
                }
                match runtime.reconcile(&name, &[]).await {
                    Ok(lines) => {
                        for line in lines {
                            tracing::info!(service = %name, "{line}");
                        }
                    }
                    Err(e) => {
                        tracing::error!(service = %name, "could not reconcile with the runtime: {e}");
                    }
                }
            }
        }
    }

    /// Removes what runs for the service outside the slots this daemon runs
    /// (leftovers of an interrupted deploy), and says so. Every action starts
    /// with it.
    pub(super) async fn reconcile(
        &self,
        service: &Service,
        spec: &ServiceSpec,
        progress: &Progress,
    ) -> Result<(), DeployError> {
        let known: Vec<KnownSlot> = Slot::ALL
            .into_iter()
            .filter_map(|slot| {
                service.running(slot).map(|r| KnownSlot {
                    slot,
                    deploy_id: r.deploy_id,
                })
            })
            .collect();
        let actions = self
            .runtimes
            .for_spec(&spec.runtime)
            .reconcile(&spec.name, &known)
            .await
            .map_err(DeployError::Start)?;
        for action in actions {
            progress.info(action);
        }
        Ok(())
    }
}
