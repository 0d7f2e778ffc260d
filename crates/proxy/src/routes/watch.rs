//! Arming a verify window on a slot, and the switch back it calls for when its
//! error budget is crossed (see `pool::watch` for the counting side).
//!
//! The switch back is the same atomic pointer store as any switch: production of
//! the service moves from the watched pool to the fallback slot's pool, and only
//! if production still points at the watched pool. Requests already in flight
//! finish where they are.

use std::sync::{Arc, Weak};

use super::ServiceRoutes;
use crate::Proxy;
use crate::pool::Pool;
use crate::pool::watch::PoolWatch;
use crate::pool::window::{ErrorBudget, Watch, WindowCounters};
use crate::slot::Slot;

impl Proxy {
    /// Arms a verify window on `slot` of `service`: from now on its requests,
    /// failures and latency are counted in the returned [`Watch`], including
    /// those of a pool the next `set_routes` creates for the slot. When the
    /// failures cross `budget` while production points at `slot`, the proxy
    /// moves production to `fallback` by itself, in one atomic step, and trips
    /// the watch. Dropping the watch disarms it. None: the service is unknown.
    pub fn watch_slot(
        &self,
        service: &str,
        slot: Slot,
        fallback: Option<Slot>,
        budget: ErrorBudget,
    ) -> Option<Watch> {
        let routes = Arc::clone(self.table.load().service(service)?);
        let counters = Arc::new(WindowCounters::new(budget));
        let service = Arc::downgrade(&routes);
        let fallback = fallback.filter(|f| *f != slot);
        let watch = Arc::new(PoolWatch::new(
            Arc::clone(&counters),
            Box::new(move |pool| switch_back(&service, fallback, pool)),
        ));
        routes.set_watch(slot, Some(Arc::clone(&watch)), None);
        let weak = Arc::downgrade(&routes);
        let disarm = Box::new(move || {
            watch.disarm();
            if let Some(routes) = weak.upgrade() {
                routes.set_watch(slot, None, Some(&watch));
            }
        });
        Some(Watch::new(counters, disarm))
    }
}

/// Moves `service`'s production from `pool` to the `fallback` slot's pool, if
/// production still points at `pool`. Weak: the routes own the pools that own
/// the watch holding this.
fn switch_back(service: &Weak<ServiceRoutes>, fallback: Option<Slot>, pool: &Arc<Pool>) {
    let service = service.upgrade();
    let fallback = service
        .as_ref()
        .zip(fallback)
        .and_then(|(service, slot)| service.slot_pool(slot).map(|p| (service, p)));
    match fallback {
        Some((service, fallback)) => {
            fallback.set_routed(true);
            let before = service
                .production
                .compare_and_swap(pool, Some(Arc::clone(&fallback)));
            let moved = before.as_ref().is_some_and(|p| Arc::ptr_eq(p, pool));
            if moved {
                let previewed = service
                    .preview
                    .load()
                    .as_ref()
                    .is_some_and(|p| Arc::ptr_eq(p, pool));
                if !previewed {
                    pool.set_routed(false);
                }
                tracing::warn!(
                    slot = %pool.slot(),
                    fallback = %fallback.slot(),
                    "verify: error budget crossed; production switched back"
                );
            }
        }
        None => tracing::warn!(
            slot = %pool.slot(),
            "verify: error budget crossed; no fallback slot to switch back to"
        ),
    }
}
