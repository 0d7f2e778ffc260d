//! The route table: which service a request belongs to (by Host), each
//! service's production and preview pool pointers (the atomic switch), and the
//! latest pool of each slot (for reuse, drain and stats).
//!
//! `set_routes` builds a new table and swaps it in whole; requests read it
//! without locks (`Proxy::pool_for`). This module does not listen and does
//! not forward. `service` holds what the owner gives and gets back
//! (`Service`, `Backend`, `DrainReport`), `traffic` drains and counts a slot,
//! `host` normalises names, `certificate` swaps a service's certificate
//! alone (`Proxy::set_certificate`), `challenge` answers ACME HTTP-01
//! (`Proxy::set_challenge`), `gate` holds maintenance and pause
//! (`Proxy::set_gate`). Installing routes is `Proxy::install`.

mod certificate;
mod challenge;
mod gate;
mod host;
pub(crate) mod https;
mod policy;
mod service;
mod traffic;
mod watch;

pub(crate) use challenge::{CHALLENGE_GET, Challenges};
pub(crate) use gate::{Gate, Gates};
pub use gate::{GateSpec, MaintenanceSpec, PauseSpec};
use host::strip_port;
pub(crate) use host::{normalize_hosts, request_host, valid_host};
pub use service::{Backend, DrainReport, ListenerName, Service, UpstreamProtocol};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwapOption;
use rustls::sign::CertifiedKey;

use crate::Proxy;
use crate::error::{ProxyError, RouteError};
use crate::policy::PolicyCell;
use crate::pool::inflight::InFlightCounter;
use crate::pool::watch::PoolWatch;
use crate::pool::{Pool, PoolLabel, Probe, ServiceTerms, TrafficStats};
use crate::slot::Slot;
use crate::upstream::UpstreamCtx;

/// What a listener serves (each accepted connection knows its listener's).
#[derive(Clone)]
pub(crate) enum ListenerKind {
    /// Routes by Host to each service's production pool.
    Production,
    /// Serves one service's preview pool, whatever the Host.
    Preview(Arc<ServiceRoutes>),
    /// The TLS listener: routes by Host like production, never redirects.
    Tls,
}

impl ListenerKind {
    /// The name a successor knows this listener by.
    pub(crate) fn name(&self) -> ListenerName {
        match self {
            ListenerKind::Production => ListenerName::Production,
            ListenerKind::Preview(routes) => ListenerName::Preview(routes.name.clone()),
            ListenerKind::Tls => ListenerName::Tls,
        }
    }
}

/// One service's routes. Lives as long as the proxy knows the service, so the
/// preview listener and in-flight counters outlive any single `set_routes`.
pub(crate) struct ServiceRoutes {
    name: String,
    /// Production traffic goes here. Each request loads it once at its start and
    /// keeps that pool, so a store is the whole switch.
    pub(crate) production: ArcSwapOption<Pool>,
    /// Preview listener traffic goes here, same rules.
    pub(crate) preview: ArcSwapOption<Pool>,
    /// Blue and green, in `Slot::ALL` order.
    slots: [SlotEntry; 2],
    /// The preview listener's real address, once bound (bound at most once).
    pub(crate) preview_addr: OnceLock<SocketAddr>,
    /// Its certificate on the TLS listener, chosen by SNI among its hosts.
    /// Swapped at install; a handshake loads it once and keeps it.
    pub(crate) cert: ArcSwapOption<CertifiedKey>,
    /// The TLS listener's port when plain-HTTP requests go to https (308);
    /// 0 when they are served.
    pub(crate) redirect_port: AtomicU16,
    /// Its body limit and error pages (`policy`), stored by `install`;
    /// every pool of the service shares it.
    pub(crate) policy: PolicyCell,
    /// Maintenance and pause (`gate`): shared with `Proxy`'s gates by name,
    /// so a gate set before the routes were installed applies.
    pub(crate) gate: Arc<Gate>,
}

struct SlotEntry {
    /// Shared by every pool this slot gets, so `drain` also sees requests on a
    /// pool that a redeploy of the slot replaced.
    in_flight: Arc<InFlightCounter>,
    /// The latest pool of the slot, kept after it is routed away: a promote or
    /// rollback with the same addresses gets the same pool (and counters) back.
    /// Locked by `set_routes` and `stats` only, never by requests.
    pool: Mutex<Option<Arc<Pool>>>,
    /// The verify window armed on the slot, handed to every pool it gets while
    /// armed. Locked by `set_routes` and `watch` only.
    watch: Mutex<Option<Arc<PoolWatch>>>,
}

fn slot_index(slot: Slot) -> usize {
    match slot {
        Slot::Blue => 0,
        Slot::Green => 1,
    }
}

impl ServiceRoutes {
    pub(crate) fn new(name: &str, gate: Arc<Gate>) -> ServiceRoutes {
        let entry = || SlotEntry {
            in_flight: Arc::default(),
            pool: Mutex::new(None),
            watch: Mutex::new(None),
        };
        ServiceRoutes {
            name: name.to_string(),
            production: ArcSwapOption::empty(),
            preview: ArcSwapOption::empty(),
            slots: [entry(), entry()],
            preview_addr: OnceLock::new(),
            cert: ArcSwapOption::empty(),
            redirect_port: AtomicU16::new(0),
            policy: PolicyCell::default(),
            gate,
        }
    }

    /// The pool for `backend`: the slot's current one if it has the same
    /// addresses, else a new one that becomes the slot's current pool.
    pub(crate) fn pool_for(
        &self,
        backend: &Backend,
        probe: &Arc<dyn Probe>,
        ctx: &Arc<UpstreamCtx>,
        protocol: UpstreamProtocol,
    ) -> Arc<Pool> {
        let h2c = protocol == UpstreamProtocol::H2c;
        let entry = &self.slots[slot_index(backend.slot)];
        let mut current = entry.pool.lock().unwrap_or_else(|e| e.into_inner());
        let same = |p: &&Arc<Pool>| {
            p.has_addrs(&backend.addrs) && *p.label.version == *backend.version && p.h2c == h2c
        };
        if let Some(pool) = current.as_ref().filter(same) {
            pool.set_probe(probe);
            return Arc::clone(pool);
        }
        let watch = entry
            .watch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let label = PoolLabel {
            service: self.name.as_str().into(),
            slot: backend.slot,
            version: backend.version.as_str().into(),
        };
        let pool = Pool::new(
            label,
            &backend.addrs,
            Arc::clone(probe),
            Arc::clone(&entry.in_flight),
            Arc::clone(ctx),
            watch,
            ServiceTerms {
                policy: Arc::clone(&self.policy),
                h2c,
            },
        );
        *current = Some(Arc::clone(&pool));
        pool
    }

    pub(crate) fn slot_pool(&self, slot: Slot) -> Option<Arc<Pool>> {
        let entry = &self.slots[slot_index(slot)];
        entry.pool.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Arms (`Some`) or disarms (`None`) a verify window on `slot`: its current
    /// pool and any pool it gets later report to it. Disarming only clears
    /// `only` when given, so a late disarm never clears a newer window.
    pub(crate) fn set_watch(
        &self,
        slot: Slot,
        watch: Option<Arc<PoolWatch>>,
        only: Option<&Arc<PoolWatch>>,
    ) {
        let entry = &self.slots[slot_index(slot)];
        let mut current = entry.watch.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(only) = only
            && !current.as_ref().is_some_and(|w| Arc::ptr_eq(w, only))
        {
            return;
        }
        *current = watch.clone();
        if let Some(pool) = entry
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            pool.set_watch(watch);
        }
    }

    pub(crate) fn slot_in_flight(&self, slot: Slot) -> &InFlightCounter {
        &self.slots[slot_index(slot)].in_flight
    }

    pub(crate) fn stats(&self, slot: Slot) -> TrafficStats {
        match self.slot_pool(slot) {
            Some(pool) => pool.traffic(),
            None => TrafficStats {
                in_flight: self.slot_in_flight(slot).get(),
                ..TrafficStats::default()
            },
        }
    }
}

/// Services by Host. Immutable once built; `set_routes` swaps in a new one.
#[derive(Default)]
pub(crate) struct RouteTable {
    /// Every known service with the (normalised) hosts it claims.
    services: Vec<(Arc<ServiceRoutes>, Vec<String>)>,
    by_host: HashMap<String, Arc<ServiceRoutes>>,
    /// The service with no hosts: it gets every Host no other service claims.
    default: Option<Arc<ServiceRoutes>>,
}

impl RouteTable {
    pub(crate) fn service(&self, name: &str) -> Option<&Arc<ServiceRoutes>> {
        self.services
            .iter()
            .map(|(service, _)| service)
            .find(|service| service.name == name)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    pub(crate) fn services(&self) -> impl Iterator<Item = &Arc<ServiceRoutes>> {
        self.services.iter().map(|(service, _)| service)
    }

    /// The service for the Host `host` gives (with or without a port). `host`
    /// is only called when some service names hosts.
    pub(crate) fn route_host<'a>(
        &self,
        host: impl FnOnce() -> Option<&'a str>,
    ) -> Option<&Arc<ServiceRoutes>> {
        if self.by_host.is_empty() {
            return self.default.as_ref();
        }
        self.lookup(host().map(strip_port))
    }

    /// The service that names `host` (no default): the TLS listener's
    /// certificate choice by SNI.
    pub(crate) fn named(&self, host: &str) -> Option<&Arc<ServiceRoutes>> {
        self.by_host.get(host.to_ascii_lowercase().as_str())
    }

    pub(crate) fn lookup(&self, host: Option<&str>) -> Option<&Arc<ServiceRoutes>> {
        if let Some(host) = host.filter(|h| !h.is_empty()) {
            let found = if host.bytes().any(|b| b.is_ascii_uppercase()) {
                self.by_host.get(host.to_ascii_lowercase().as_str())
            } else {
                self.by_host.get(host)
            };
            if found.is_some() {
                return found;
            }
        }
        self.default.as_ref()
    }

    /// A copy of this table where `service` claims `hosts`, or a conflict.
    pub(crate) fn with_service(
        &self,
        service: Arc<ServiceRoutes>,
        hosts: Vec<String>,
    ) -> Result<RouteTable, RouteError> {
        for (other, other_hosts) in &self.services {
            if other.name == service.name {
                continue;
            }
            if hosts.is_empty() && other_hosts.is_empty() {
                return Err(RouteError::Conflict(format!(
                    "services {:?} and {:?} both have no hosts: only one default service is allowed",
                    other.name, service.name
                )));
            }
            if let Some(host) = hosts.iter().find(|h| other_hosts.contains(h)) {
                return Err(RouteError::Conflict(format!(
                    "host {host:?} is claimed by services {:?} and {:?}",
                    other.name, service.name
                )));
            }
        }
        let mut services: Vec<_> = self
            .services
            .iter()
            .filter(|(other, _)| other.name != service.name)
            .cloned()
            .collect();
        services.push((service, hosts));
        let mut table = RouteTable::default();
        for (service, hosts) in &services {
            if hosts.is_empty() {
                table.default = Some(Arc::clone(service));
            }
            for host in hosts {
                table.by_host.insert(host.clone(), Arc::clone(service));
            }
        }
        table.services = services;
        Ok(table)
    }
}

impl Proxy {
    /// The pool a request for `host` that came in on `listener` goes to, or why
    /// there is none. `host` is only called when some service names hosts.
    pub(crate) fn pool_for<'a>(
        &self,
        listener: &ListenerKind,
        host: impl FnOnce() -> Option<&'a str>,
    ) -> Result<Arc<Pool>, ProxyError> {
        let pool = match listener {
            ListenerKind::Production | ListenerKind::Tls => {
                let table = self.table.load();
                let mut seen = None;
                let host = || {
                    seen = host();
                    seen
                };
                match table.route_host(host) {
                    Some(service) => {
                        if let ListenerKind::Production = listener {
                            let port = service.redirect_port.load(Ordering::Relaxed);
                            if port != 0 {
                                return Err(ProxyError::HttpsRedirect(port));
                            }
                        }
                        if service.gate.is_set() {
                            service.gate.check(seen)?;
                        }
                        service.production.load_full()
                    }
                    // Nothing installed yet (daemon starting): unavailable, not unknown.
                    None if table.is_empty() => None,
                    None => return Err(ProxyError::NoRoute),
                }
            }
            ListenerKind::Preview(service) => service.preview.load_full(),
        };
        pool.ok_or(ProxyError::NoBackend)
    }
}
