//! Applying a service's routes (`Proxy::install`), waiting for a slot to
//! drain, and reading a slot's counters.
//!
//! A change is validated (host conflicts, preview bind) before anything is
//! touched, so a failed `set_routes` leaves every route as it was.

use std::sync::Arc;
use std::time::Duration;

use super::ServiceRoutes;
use super::host::normalize_hosts;
use super::service::{Backend, DrainReport, Service};
use crate::Proxy;
use crate::client::listener::{self, Listener};
use crate::error::RouteError;
use crate::pool::{Pool, TrafficStats};
use crate::slot::Slot;

impl Proxy {
    /// Installs `spec`'s routes in one atomic step: production to `live`, the
    /// preview listener (bound now if the service has one) to `preview`. None
    /// means nothing there: such requests get 503. On an error (a host
    /// conflict, a preview listener that cannot bind) every route stays as it was.
    pub async fn install(
        &self,
        spec: &Service,
        live: Option<Backend>,
        preview: Option<Backend>,
    ) -> Result<(), RouteError> {
        let _writer = self.writer.lock().await;
        let current = self.table.load_full();
        let service = match current.service(&spec.name) {
            Some(service) => Arc::clone(service),
            None => Arc::new(ServiceRoutes::new(&spec.name)),
        };
        let table = current.with_service(Arc::clone(&service), normalize_hosts(&spec.hosts))?;
        if let Some(addr) = spec.preview
            && service.preview_addr.get().is_none()
        {
            let me = self.me.upgrade().ok_or(RouteError::Closed)?;
            let bound = listener::bind(addr, me.workers.len()).await?;
            let local = bound.addr;
            listener::spawn_accept(&me, bound, Listener::Preview(Arc::clone(&service)));
            let _ = service.preview_addr.set(local);
            tracing::info!(service = %spec.name, addr = %local, "preview listening");
        }

        let pool = |backend: Option<Backend>| {
            backend
                .filter(|b| !b.addrs.is_empty())
                .map(|b| service.pool_for(&b, &spec.probe, &self.upstream))
        };
        let live = pool(live);
        let preview = pool(preview);
        for new in live.iter().chain(preview.iter()) {
            new.set_routed(true);
        }
        let old_live = service.production.swap(live.clone());
        let old_preview = service.preview.swap(preview.clone());
        for old in old_live.iter().chain(old_preview.iter()) {
            let still = |p: &Option<Arc<Pool>>| p.as_ref().is_some_and(|p| Arc::ptr_eq(p, old));
            if !still(&live) && !still(&preview) {
                old.set_routed(false);
            }
        }
        self.table.store(Arc::new(table));
        tracing::info!(
            service = %spec.name,
            live = ?live.as_ref().map(|p| p.slot()),
            preview = ?preview.as_ref().map(|p| p.slot()),
            "routes installed"
        );
        Ok(())
    }

    /// Waits until nothing is in flight to `slot` of `service`, or `timeout`.
    /// Requests that started before the last `set_routes` moved away from it
    /// count, on every pool the slot has had.
    pub async fn drain(&self, service: &str, slot: Slot, timeout: Duration) -> DrainReport {
        let service = self.table.load().service(service).cloned();
        let Some(service) = service else {
            return DrainReport {
                remaining: 0,
                timed_out: false,
                waited: Duration::ZERO,
            };
        };
        let (remaining, waited) = service.slot_in_flight(slot).wait_idle(timeout).await;
        DrainReport {
            remaining,
            timed_out: remaining > 0,
            waited,
        }
    }

    /// Counters of `slot`'s current pool of `service`, since that pool was
    /// created.
    pub fn stats(&self, service: &str, slot: Slot) -> TrafficStats {
        self.table
            .load()
            .service(service)
            .map(|service| service.stats(slot))
            .unwrap_or_default()
    }
}
