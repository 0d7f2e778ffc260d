//! In-flight accounting: the per-slot counter `drain` waits on, and the guard a
//! request (or an upgraded connection) holds for its whole life.
//!
//! The guard is created when a request has picked its pool and dropped when the
//! response body has ended or been dropped, or when a websocket tunnel closes.
//! This module does not pick endpoints and does not forward anything.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::Pool;
use super::upgraded::Upgraded;
use super::watch::PoolWatch;

/// Requests in flight to one slot of one service, across every pool that slot
/// has had (a redeploy of the slot replaces its pool while old requests finish).
#[derive(Debug, Default)]
pub(crate) struct InFlightCounter {
    /// Live guards. Incremented when a request starts, decremented when its
    /// response body ends; `drain` reads it.
    count: AtomicUsize,
    /// Woken each time `count` reaches zero, so `drain` sleeps instead of polling.
    idle: Notify,
    /// The upgraded connections among them, and the order that closes them
    /// at a drain's deadline.
    upgraded: Upgraded,
}

impl InFlightCounter {
    pub(crate) fn get(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    pub(crate) fn upgraded(&self) -> &Upgraded {
        &self.upgraded
    }

    fn enter(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    fn leave(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Waits until the count is zero or `timeout` passed; returns what is left
    /// and how long it waited.
    pub(crate) async fn wait_idle(&self, timeout: Duration) -> (usize, Duration) {
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + timeout);
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Register before reading the count, so a drop to zero between the
            // read and the await still wakes us.
            notified.as_mut().enable();
            let left = self.get();
            if left == 0 {
                return (0, started.elapsed());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return (self.get(), started.elapsed());
            }
        }
    }
}

/// One request's claim on a pool. Keeps the pool alive (the request's pool was
/// chosen once, at its start) and counts it as in flight until dropped.
pub(crate) struct InFlight {
    pool: Arc<Pool>,
    /// Index of the endpoint the request is on, once picked; its own counter
    /// feeds least-in-flight balancing.
    endpoint: Option<usize>,
    /// The verify window watching the pool when the request started, and when
    /// it started (for its latency). None outside windows: no clock read.
    watch: Option<(Arc<PoolWatch>, Instant)>,
}

impl InFlight {
    pub(crate) fn start(pool: Arc<Pool>) -> InFlight {
        pool.in_flight().enter();
        pool.stats().request();
        let watch = pool.watch().map(|w| {
            let started = w.start();
            (w, started)
        });
        InFlight {
            pool,
            endpoint: None,
            watch,
        }
    }

    /// The upstream answered (a response head): a 5xx is counted in the pool's
    /// stats, and the answer is reported to a watching window.
    pub(crate) fn answered(&self, server_error: bool) {
        if server_error {
            self.pool.stats().server_error();
        }
        if let Some((watch, started)) = &self.watch {
            watch.answered(&self.pool, *started, server_error);
        }
    }

    /// No usable upstream answer (the proxy answers 502/504 itself): counted as
    /// an upstream failure and a 5xx, and reported to a watching window.
    pub(crate) fn failed(&self) {
        let stats = self.pool.stats();
        stats.upstream_failure();
        stats.server_error();
        if let Some((watch, started)) = &self.watch {
            watch.failed(&self.pool, *started);
        }
    }

    /// The client broke the request (a malformed or cut-short body): the
    /// proxy answers 400 or closes. Counted as a client error only: not a
    /// 5xx, not an upstream failure, and not an error of a watching window
    /// (the request still counts among the window's requests: it reached
    /// the slot).
    pub(crate) fn client_error(&self) {
        self.pool.stats().client_error();
    }

    pub(crate) fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Moves the request onto endpoint `index` (after a pick or a retry).
    pub(crate) fn attach(&mut self, index: usize) {
        if self.endpoint == Some(index) {
            return;
        }
        if let Some(old) = self.endpoint.take() {
            self.pool.endpoint(old).leave();
        }
        self.pool.endpoint(index).enter();
        self.endpoint = Some(index);
    }

    /// Index of the endpoint the request is attached to.
    pub(crate) fn endpoint_index(&self) -> Option<usize> {
        self.endpoint
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(index) = self.endpoint.take() {
            self.pool.endpoint(index).leave();
        }
        self.pool.in_flight().leave();
    }
}
