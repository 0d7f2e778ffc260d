//! Applying a service's routes (`set_routes`), waiting for a slot to drain, and
//! reading a slot's counters: the proxy side of [`crate::router::Router`].
//!
//! A change is validated (host conflicts, preview bind) before anything is
//! touched, so a failed `set_routes` leaves every route as it was.

use std::sync::Arc;
use std::time::Duration;

use crate::router::{Backend, DrainReport, RouterError, TrafficStats};
use crate::slot::Slot;
use crate::spec::ServiceSpec;

use super::Proxy;
use super::listener::{self, Entry};
use super::pool::Pool;
use super::routes::{ServiceRoutes, normalize_hosts};

impl Proxy {
    /// Installs `spec`'s routes: production to `live`, preview to `preview`.
    pub(crate) async fn install(
        &self,
        spec: &ServiceSpec,
        live: Option<Backend>,
        preview: Option<Backend>,
    ) -> Result<(), RouterError> {
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
            let me = self
                .me
                .upgrade()
                .ok_or_else(|| RouterError::Other("proxy is shutting down".into()))?;
            let bound = listener::bind(addr, me.workers.len()).await?;
            let local = bound.addr;
            listener::spawn_accept(&me, bound, Entry::Preview(Arc::clone(&service)));
            let _ = service.preview_addr.set(local);
            tracing::info!(service = %spec.name, addr = %local, "preview listening");
        }

        let pool = |backend: Option<Backend>| {
            backend
                .filter(|b| !b.addrs.is_empty())
                .map(|b| service.pool_for(&b, &spec.health, &self.upstream))
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
    pub(crate) async fn drain_slot(
        &self,
        service: &str,
        slot: Slot,
        timeout: Duration,
    ) -> DrainReport {
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

    /// Counters of `slot`'s current pool of `service`.
    pub(crate) fn slot_stats(&self, service: &str, slot: Slot) -> TrafficStats {
        self.table
            .load()
            .service(service)
            .map(|service| service.stats(slot))
            .unwrap_or_default()
    }
}
