//! The blue-green state machine: stage, health gate, preview, switch, persist,
//! drain, retire; plus promote, rollback and restore after a daemon restart.
//!
//! `deploy/` reaches instances only through [`Runtime`](crate::runtime::Runtime),
//! traffic only through [`Router`](crate::router::Router) and disk only through
//! [`StateCell`](crate::state::StateCell). It never talks to a process, a socket or
//! a file directly. The invariant it keeps: a failure before the switch removes the
//! new slot and leaves production exactly as it was.
//!
//! [`Deployer`] holds what lives as long as the daemon (router, runtimes, state,
//! services); one action on one service runs as an `ActionContext`
//! (`context.rs`), which its steps (`flow.rs`, `switch.rs`, `verify.rs`,
//! `switch_back.rs`, `hooks.rs`, `prune.rs`) take instead of argument lists.
//! Secret values reach a deploy from its request or the store (`secrets.rs`).

mod actions;
mod context;
mod discard;
mod error;
mod flow;
mod gate;
mod hooks;
mod lock;
mod progress;
mod prune;
mod restore;
mod secrets;
mod service;
mod status;
mod stop;
mod switch;
mod switch_back;
mod verify;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use error::DeployError;
pub use progress::Progress;
pub use restore::{Restored, restore_live};
pub use service::{ActionGuard, RunningSlot, Service};

use crate::router::Router;
use crate::runtime::{InstanceRef, Runtime};
use crate::slot::Slot;
use crate::spec::RuntimeSpec;
use crate::state::{ServiceRecord, StateCell};

/// How long an instance gets between SIGTERM and SIGKILL when a slot is retired.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The runtimes this daemon can use, one per `RuntimeSpec` kind.
#[derive(Clone)]
pub struct Runtimes {
    pub process: Arc<dyn Runtime>,
    pub docker: Arc<dyn Runtime>,
}

impl Runtimes {
    pub fn for_spec(&self, spec: &RuntimeSpec) -> Arc<dyn Runtime> {
        match spec {
            RuntimeSpec::Process { .. } => self.process.clone(),
            RuntimeSpec::Docker(_) => self.docker.clone(),
        }
    }
}

/// Runs actions on services. One per daemon.
pub struct Deployer {
    router: Arc<dyn Router>,
    runtimes: Runtimes,
    state: Arc<StateCell>,
    /// Services by name. Entries are created by the first deploy and never removed
    /// while the daemon runs; held only to look up or insert.
    services: Mutex<BTreeMap<String, Arc<Service>>>,
    /// Set while a successor daemon takes over ([`Deployer::lock_all_actions`]):
    /// no action begins, on a known service or a new one. Changed only with
    /// `services` held.
    frozen: Arc<AtomicBool>,
    /// Fires when the daemon stops: health gates in progress give up.
    shutdown: CancellationToken,
    /// Serialises maintenance and pause changes (`gate.rs`), which do not
    /// take a service's action lock.
    gate_lock: tokio::sync::Mutex<()>,
}

/// Every service's action lock, and no new action, while a successor daemon
/// takes over; dropped, actions may begin again (an upgrade that failed).
#[derive(Debug)]
pub struct AllActions {
    _guards: Vec<ActionGuard>,
    frozen: Arc<AtomicBool>,
}

impl Drop for AllActions {
    fn drop(&mut self) {
        self.frozen.store(false, Ordering::Release);
    }
}

impl Deployer {
    /// Builds the deployer around slots that `restore_live` brought back, and
    /// installs the routes of every known service.
    pub async fn new(
        router: Arc<dyn Router>,
        runtimes: Runtimes,
        state: Arc<StateCell>,
        restored: Vec<Restored>,
        shutdown: CancellationToken,
    ) -> Result<Deployer, DeployError> {
        let deployer = Deployer {
            router,
            runtimes,
            state,
            services: Mutex::new(BTreeMap::new()),
            frozen: Arc::new(AtomicBool::new(false)),
            shutdown,
            gate_lock: tokio::sync::Mutex::new(()),
        };
        let mut restored: BTreeMap<String, Restored> =
            restored.into_iter().map(|r| (r.name.clone(), r)).collect();
        let snapshot = deployer.state.snapshot();
        let mut routes = Vec::with_capacity(snapshot.services.len());
        for (name, record) in &snapshot.services {
            let service = deployer.service_or_insert(name);
            let live = restored.remove(name).map(|r| {
                let backend = r.running.backend(r.slot);
                service.set_running(r.slot, Some(r.running));
                backend
            });
            routes.push((&record.spec, live));
            // Before the routes: requests meet the gates from the first one.
            if !record.gates.is_empty() {
                deployer
                    .router
                    .set_gate(&record.spec, &record.gates)
                    .await
                    .map_err(DeployError::Route)?;
            }
        }
        // One change for all services: a successor on a running nginx must not
        // pass through configs that name only some of them.
        deployer
            .router
            .restore_routes(&routes)
            .await
            .map_err(DeployError::Route)?;
        Ok(deployer)
    }

    /// Looks up a service and takes its action lock; fails at once when busy.
    /// With `create`, an unknown service is registered (a first deploy).
    pub fn begin(
        &self,
        name: &str,
        create: bool,
    ) -> Result<(Arc<Service>, ActionGuard), DeployError> {
        let service = {
            let mut services = self.lock_services();
            if self.frozen.load(Ordering::Acquire) {
                return Err(DeployError::Upgrading);
            }
            match services.get(name) {
                Some(service) => service.clone(),
                None if create => services
                    .entry(name.to_string())
                    .or_insert_with(|| Arc::new(Service::new(name)))
                    .clone(),
                None => return Err(DeployError::UnknownService(name.to_string())),
            }
        };
        let guard = service.try_begin().ok_or_else(|| DeployError::Busy {
            service: name.to_string(),
        })?;
        Ok((service, guard))
    }

    pub fn service(&self, name: &str) -> Option<Arc<Service>> {
        self.lock_services().get(name).cloned()
    }

    fn service_or_insert(&self, name: &str) -> Arc<Service> {
        self.lock_services()
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Service::new(name)))
            .clone()
    }

    /// Every known service's action lock, and no action on a new service, for
    /// a daemon upgrade: nothing may change state across a hand-over. Err
    /// names a service whose action is in progress (then nothing is held).
    pub fn lock_all_actions(&self) -> Result<AllActions, String> {
        let services = self.lock_services();
        let guards = services
            .values()
            .map(|service| service.try_begin().ok_or_else(|| service.name.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        self.frozen.store(true, Ordering::Release);
        Ok(AllActions {
            _guards: guards,
            frozen: Arc::clone(&self.frozen),
        })
    }

    pub(super) fn lock_services(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Service>>> {
        // Entries are only inserted whole; a poisoned map is still consistent.
        self.services.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn router(&self) -> &Arc<dyn Router> {
        &self.router
    }

    /// Every service's record, in name order.
    pub fn records(&self) -> Vec<ServiceRecord> {
        self.state.snapshot().services.into_values().collect()
    }

    pub fn record(&self, name: &str) -> Option<ServiceRecord> {
        self.state.snapshot().services.get(name).cloned()
    }

    /// Daemon shutdown: every instance that is not live is stopped; live ones
    /// are released (processes and containers keep serving and the next
    /// `teal serve` adopts them) or stopped as well, as `live` says. State is
    /// kept, so the next `teal serve` brings the live versions back.
    pub async fn stop_all(&self, grace: Duration, live_instances: LiveInstances) {
        let services: Vec<Arc<Service>> = self.lock_services().values().cloned().collect();
        let mut live: Vec<InstanceRef> = Vec::new();
        let mut rest: Vec<InstanceRef> = Vec::new();
        for service in &services {
            for slot in Slot::ALL {
                if let Some(running) = service.set_running(slot, None) {
                    if running.state == crate::slot::SlotState::Live
                        && live_instances == LiveInstances::Release
                    {
                        live.extend(running.instances);
                    } else {
                        rest.extend(running.instances);
                    }
                }
            }
        }
        futures_util::future::join(
            stop_instances(&rest, grace),
            futures_util::future::join_all(live.iter().map(|i| i.release(grace))),
        )
        .await;
    }
}

/// What a stopping daemon does with the instances of live slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveInstances {
    /// Let go of them: they keep serving and the next daemon adopts them.
    Release,
    /// Stop them like every other instance.
    Stop,
}

/// Stops instances concurrently and waits for all of them.
pub async fn stop_instances(instances: &[InstanceRef], grace: Duration) {
    futures_util::future::join_all(instances.iter().map(|i| i.stop(grace))).await;
}
