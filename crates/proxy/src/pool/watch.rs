//! The proxy side of a verify window (`window`): arming a slot,
//! counting its requests from the in-flight guard, and the switch back the proxy
//! makes by itself when the window's error budget is crossed.
//!
//! The switch back is the same atomic pointer store as any switch: production of
//! the service moves from the watched pool to the fallback slot's pool, and only
//! if production still points at the watched pool. Requests already in flight
//! finish where they are.

use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use super::Pool;
use super::window::{ErrorBudget, Watch, WindowCounters};
use crate::Proxy;
use crate::routes::ServiceRoutes;
use crate::slot::Slot;

/// A verify window as the proxy holds it on the watched slot's pools.
pub(crate) struct PoolWatch {
    pub(crate) counters: Arc<WindowCounters>,
    /// Where production goes back to on a crossing. Weak: the routes own the pools
    /// that own this.
    service: Weak<ServiceRoutes>,
    fallback: Option<Slot>,
    /// True until the window is disarmed. A request that started inside the
    /// window may answer after it: it must not switch anything then. Held for
    /// the switch back and for disarming only (once each), never per request.
    armed: Mutex<bool>,
}

impl PoolWatch {
    /// Counts a request that started on a watched pool; returns the clock for its
    /// latency.
    pub(crate) fn start(&self) -> Instant {
        self.counters.request();
        Instant::now()
    }

    /// An answer (a response head) after `started`; moves production back when it
    /// crossed the budget.
    pub(crate) fn answered(&self, pool: &Arc<Pool>, started: Instant, server_error: bool) {
        if self.counters.answered(started.elapsed(), server_error) {
            self.trip(pool);
        }
    }

    /// A request that got no upstream answer.
    pub(crate) fn failed(&self, pool: &Arc<Pool>, started: Instant) {
        if self.counters.failed(started.elapsed()) {
            self.trip(pool);
        }
    }

    fn trip(&self, pool: &Arc<Pool>) {
        let armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        if !*armed {
            return;
        }
        let service = self.service.upgrade();
        let fallback = service
            .as_ref()
            .zip(self.fallback)
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
        drop(armed);
        self.counters.tripped();
    }

    /// Ends the window: from now on no answer switches anything.
    fn disarm(&self) {
        *self.armed.lock().unwrap_or_else(|p| p.into_inner()) = false;
    }
}

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
        let watch = Arc::new(PoolWatch {
            counters: Arc::clone(&counters),
            service: Arc::downgrade(&routes),
            fallback: fallback.filter(|f| *f != slot),
            armed: Mutex::new(true),
        });
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
