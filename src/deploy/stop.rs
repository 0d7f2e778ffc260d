//! `stop`: take a service out of production on purpose and stop every instance
//! of it, both slots. The daemon's own shutdown lets live instances run on (the
//! next daemon adopts them); this is how they are stopped.
//!
//! The slots are recorded as stopped, so the next `teal serve` does not bring the
//! service back; the next deploy does (into the other slot, as usual), and the
//! proxy answers 503 for it until then. The history is not touched.

use std::sync::Arc;

use super::flow::drain_before_stop;
use super::{ActionGuard, DeployError, Deployer, Progress, STOP_GRACE, Service, stop_instances};
use crate::slot::{Slot, SlotState};
use crate::wire::{Outcome, Step};

impl Deployer {
    /// Takes `service` off its listeners, drains and stops both slots, and
    /// records them stopped.
    pub async fn stop_service(
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
            // Leftovers of an earlier daemon go too, as before every action.
            self.reconcile(&service, &record.spec, &progress).await?;
            progress.step(Step::Prepare, "taking the service off its listeners");
            self.router
                .set_routes(&record.spec, None, None)
                .await
                .map_err(DeployError::Route)?;
            let mut stopped = 0;
            for slot in Slot::ALL {
                let Some(running) = service.running(slot) else {
                    continue;
                };
                progress.step(
                    Step::Retire,
                    format!(
                        "stopping {slot} ({}, {} instances)",
                        running.version,
                        running.instances.len()
                    ),
                );
                drain_before_stop(&*self.router, &record.spec, slot, &progress).await;
                stop_instances(&running.instances, STOP_GRACE).await;
                service.set_running(slot, None);
                stopped += running.instances.len();
            }
            self.state
                .update(|s| {
                    if let Some(rec) = s.services.get_mut(&name) {
                        for slot in Slot::ALL {
                            rec.slots.get_mut(slot).state = SlotState::Stopped;
                        }
                    }
                })
                .map_err(DeployError::State)?;
            Ok::<_, DeployError>(stopped)
        }
        .await;
        match &result {
            Ok(stopped) => progress.done(
                Outcome::Stopped,
                None,
                None,
                format!("{name} is stopped ({stopped} instances); the next deploy starts it again"),
            ),
            Err(e) => progress.done(Outcome::Failed, None, None, e.to_string()),
        }
        result.map(|_| Outcome::Stopped)
    }
}
