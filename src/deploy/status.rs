//! Read-only views for the API: status (with a fresh health probe per instance),
//! history, and instance logs.

use std::time::Duration;

use futures_util::stream::BoxStream;

use super::{DeployError, Deployer};
use crate::health;
use crate::runtime::{LogLine, LogRun, RuntimeError};
use crate::slot::{Slot, SlotState};
use crate::spec::{HealthSpec, RuntimeSpec};
use crate::state::ServiceRecord;
use crate::wire::{
    History, InstanceStatus, LogPick, ServiceStatus, SlotStatus, SlotsStatus, Status,
};

/// Status probes are short: status must answer quickly even when an app hangs.
const STATUS_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

impl Deployer {
    pub async fn status(&self, only: Option<&str>) -> Result<Status, DeployError> {
        let snapshot = self.state.snapshot();
        if let Some(name) = only
            && !snapshot.services.contains_key(name)
        {
            return Err(DeployError::UnknownService(name.to_string()));
        }
        let records = snapshot
            .services
            .values()
            .filter(|r| only.is_none_or(|n| r.spec.name == n));
        let services =
            futures_util::future::join_all(records.map(|r| self.service_status(r))).await;
        Ok(Status {
            services,
            listen: self.router.listen_addrs(),
            tls_listen: self.router.tls_addr(),
            daemon_version: env!("CARGO_PKG_VERSION").to_string(),
            certificates: self
                .router
                .certificates()
                .into_iter()
                .filter(|cert| only.is_none_or(|name| cert.service == name))
                .collect(),
        })
    }

    async fn service_status(&self, record: &ServiceRecord) -> ServiceStatus {
        let service = self.service(&record.spec.name);
        let mut probe_spec = record.spec.health.clone();
        probe_spec.timeout = probe_spec.timeout.min(STATUS_PROBE_TIMEOUT);
        let blue = self
            .slot_status(record, service.as_deref(), Slot::Blue, &probe_spec)
            .await;
        let green = self
            .slot_status(record, service.as_deref(), Slot::Green, &probe_spec)
            .await;
        ServiceStatus {
            name: record.spec.name.clone(),
            active_slot: record.active_slot,
            active_version: record.active_version().map(str::to_string),
            slots: SlotsStatus { blue, green },
            runtime: record.spec.runtime.kind().to_string(),
            hosts: record.spec.hosts.clone(),
            preview: self.router.preview_addr(&record.spec.name),
            busy: service.is_some_and(|s| s.busy()),
            lock: self.lock_of(&record.spec.name),
            gates: record.gates.clone(),
            secrets: self.secret_status(record),
        }
    }

    async fn slot_status(
        &self,
        record: &ServiceRecord,
        service: Option<&super::Service>,
        slot: Slot,
        probe_spec: &HealthSpec,
    ) -> SlotStatus {
        let Some(running) = service.and_then(|s| s.running(slot)) else {
            return SlotStatus {
                version: record.slots.get(slot).version.clone(),
                state: SlotState::Stopped,
                instances: Vec::new(),
                image_id: record.slots.get(slot).image_id.clone(),
            };
        };
        let probes = futures_util::future::join_all(
            running
                .instances
                .iter()
                .map(|i| async move { (i, health::probe(i.addr(), probe_spec).await) }),
        )
        .await;
        SlotStatus {
            version: Some(running.version.clone()),
            state: running.state,
            image_id: running
                .instances
                .iter()
                .find_map(|i| i.image())
                .or_else(|| record.slots.get(slot).image_id.clone()),
            instances: probes
                .into_iter()
                .map(|(i, probe)| {
                    let image_id = i.image();
                    InstanceStatus {
                        addr: i.addr(),
                        healthy: probe.is_healthy() && i.waiting_for().is_none(),
                        id: i.id(),
                        restarts: i.restarts(),
                        health: match i.waiting_for() {
                            Some(waiting) if probe.is_healthy() => format!("{probe}, {waiting}"),
                            _ => probe.to_string(),
                        },
                        container: matches!(record.spec.runtime, RuntimeSpec::Docker(_))
                            .then(|| i.id()),
                        image_id,
                        warning: health::wildcard(i.as_ref()),
                    }
                })
                .collect(),
        }
    }

    pub fn history(&self, name: &str) -> Result<History, DeployError> {
        let record = self
            .record(name)
            .ok_or_else(|| DeployError::UnknownService(name.to_string()))?;
        Ok(History {
            service: name.to_string(),
            entries: record.history,
        })
    }

    /// Instance output: of `slot`, of a kept run of `version`, of the run
    /// before the live one (`previous`), else of the live slot.
    pub async fn logs(
        &self,
        name: &str,
        pick: LogPick,
        follow: bool,
    ) -> Result<BoxStream<'static, LogLine>, DeployError> {
        let record = self
            .record(name)
            .ok_or_else(|| DeployError::UnknownService(name.to_string()))?;
        let live = || {
            record.active_slot.ok_or_else(|| {
                DeployError::Invalid(format!(
                    "service {name:?} has no live slot; pass --slot or --version"
                ))
            })
        };
        let run = match pick {
            LogPick::Live => LogRun::Slot(live()?),
            LogPick::Slot(slot) => LogRun::Slot(slot),
            LogPick::Version(version) => LogRun::Version(version),
            LogPick::Previous => LogRun::Before(live()?),
        };
        self.runtimes
            .for_spec(&record.spec.runtime)
            .logs(name, &run, follow)
            .await
            .map_err(|e| match e {
                // No such run kept: bad input, not a failed start.
                RuntimeError::InvalidSpec(why) => DeployError::Invalid(why),
                e => DeployError::Start(e),
            })
    }
}
