//! The proxy side of a verify window (`window`): counting a watched pool's
//! requests from the in-flight guard, and calling for the switch back when the
//! window's error budget is crossed. The switch back itself moves routes, so
//! the routes give it (`routes::watch`); this module only makes sure it runs
//! at most once and never after the window was disarmed.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::Pool;
use super::window::WindowCounters;

/// Moves production off a pool whose window crossed its budget.
pub(crate) type SwitchBack = Box<dyn Fn(&Arc<Pool>) + Send + Sync>;

/// A verify window as the proxy holds it on the watched slot's pools.
pub(crate) struct PoolWatch {
    pub(crate) counters: Arc<WindowCounters>,
    /// Called once, on the answer that crossed the budget, while armed.
    switch_back: SwitchBack,
    /// True until the window is disarmed. A request that started inside the
    /// window may answer after it: it must not switch anything then. Held for
    /// the switch back and for disarming only (once each), never per request.
    armed: Mutex<bool>,
}

impl PoolWatch {
    pub(crate) fn new(counters: Arc<WindowCounters>, switch_back: SwitchBack) -> PoolWatch {
        PoolWatch {
            counters,
            switch_back,
            armed: Mutex::new(true),
        }
    }

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
        if *armed {
            (self.switch_back)(pool);
        }
        drop(armed);
        self.counters.tripped();
    }

    /// Ends the window: from now on no answer switches anything.
    pub(crate) fn disarm(&self) {
        *self.armed.lock().unwrap_or_else(|p| p.into_inner()) = false;
    }
}
