//! Watching one slot during a post-switch verify window: the counters the proxy
//! keeps while a [`Watch`] is armed, the error budget it enforces, and the latency
//! histogram behind `max_p99`.
//!
//! The proxy counts (it sees every request); its owner reads and judges. One rule
//! is enforced by the proxy itself, on the request path: the moment the window's
//! failures cross the [`ErrorBudget`], production moves back to the fallback slot
//! in one atomic step, before any further request can reach the bad slot. That
//! makes "the failures clients saw" bounded by the budget plus what was already in
//! flight, whatever the scheduler does with the deploy task. Latency is only
//! measured while a watch is armed, so the proxy's hot path pays one relaxed load
//! otherwise.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use teal_histogram::{AtomicHistogram, Histogram};
use tokio::sync::Notify;

/// How many failed requests a window tolerates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorBudget {
    /// Largest share of failed requests (0..=1).
    pub max_error_rate: f64,
    /// The rate is taken over at least this many requests, so a few early
    /// failures do not trip it, yet failures that would exceed the rate even if
    /// every request up to this count succeeded do.
    pub min_requests: u64,
}

impl ErrorBudget {
    /// True when `errors` out of `requests` exceed the budget for good.
    pub fn crossed(&self, errors: u64, requests: u64) -> bool {
        errors > 0 && errors as f64 > self.max_error_rate * requests.max(self.min_requests) as f64
    }
}

/// What a window saw so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowStats {
    /// Requests that started on the watched slot since the watch was armed.
    pub requests: u64,
    /// Of those, how many ended with a 5xx (including the proxy's own 502/504).
    pub errors: u64,
    /// Of the errors, requests no upstream answered (connect or transport failure).
    pub upstream_failures: u64,
    /// Requests that finished (got an answer or failed).
    pub completed: u64,
    /// Time to the response head of the completed requests.
    pub latency: Histogram,
    /// True once the budget was crossed and the proxy moved production back.
    pub tripped: bool,
}

impl WindowStats {
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// The counters of one armed window, shared by the proxy (writer) and the
/// verifier (reader). Every field is an atomic: the request path never locks.
#[derive(Debug)]
pub struct WindowCounters {
    budget: ErrorBudget,
    requests: AtomicU64,
    errors: AtomicU64,
    upstream_failures: AtomicU64,
    latency: AtomicHistogram,
    /// Set once, by the increment that crossed the budget.
    tripped: AtomicBool,
    /// Wakes the verifier when `tripped` is set.
    trip: Notify,
}

impl WindowCounters {
    pub fn new(budget: ErrorBudget) -> WindowCounters {
        WindowCounters {
            budget,
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            upstream_failures: AtomicU64::new(0),
            latency: AtomicHistogram::default(),
            tripped: AtomicBool::new(false),
            trip: Notify::new(),
        }
    }

    pub fn budget(&self) -> ErrorBudget {
        self.budget
    }

    /// A request started on the watched slot.
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::AcqRel);
    }

    /// A request finished after `latency` with a response head; `server_error` for 5xx.
    /// Returns true when this answer is the one that crossed the budget (the
    /// caller then moves production back, then calls [`WindowCounters::tripped`]).
    pub fn answered(&self, latency: Duration, server_error: bool) -> bool {
        self.latency.record(latency);
        server_error && self.error()
    }

    /// A request got no upstream answer at all. Same return as [`WindowCounters::answered`].
    pub fn failed(&self, latency: Duration) -> bool {
        self.latency.record(latency);
        self.upstream_failures.fetch_add(1, Ordering::Relaxed);
        self.error()
    }

    fn error(&self) -> bool {
        let errors = self.errors.fetch_add(1, Ordering::AcqRel) + 1;
        let requests = self.requests.load(Ordering::Acquire);
        self.budget.crossed(errors, requests) && !self.tripped.swap(true, Ordering::AcqRel)
    }

    /// Tells the verifier that the budget was crossed (after the switch back).
    pub fn tripped(&self) {
        self.trip.notify_waiters();
    }

    pub fn is_tripped(&self) -> bool {
        self.tripped.load(Ordering::Acquire)
    }

    /// Resolves once the budget was crossed (at once if it already was).
    pub async fn wait_tripped(&self) {
        loop {
            let notified = self.trip.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_tripped() {
                return;
            }
            notified.await;
        }
    }

    pub fn snapshot(&self) -> WindowStats {
        WindowStats {
            // Errors first: every error counted has its request counted too.
            errors: self.errors.load(Ordering::Acquire),
            upstream_failures: self.upstream_failures.load(Ordering::Relaxed),
            latency: self.latency.snapshot(),
            requests: self.requests.load(Ordering::Acquire),
            completed: 0,
            tripped: self.is_tripped(),
        }
        .with_completed()
    }
}

impl WindowStats {
    fn with_completed(mut self) -> Self {
        self.completed = self.latency.total();
        self
    }
}

/// An armed watch. Dropping it disarms the proxy's counting.
pub struct Watch {
    counters: Arc<WindowCounters>,
    /// Undoes the arming in the proxy (set when it was armed).
    disarm: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Watch {
    pub fn new(counters: Arc<WindowCounters>, disarm: Box<dyn FnOnce() + Send>) -> Watch {
        Watch {
            counters,
            disarm: Mutex::new(Some(disarm)),
        }
    }

    pub fn counters(&self) -> &WindowCounters {
        &self.counters
    }

    /// Ends the window and tells whether its budget was crossed. Once this
    /// returns the proxy switches nothing any more for it; a switch back it made
    /// before shows here.
    pub fn disarm(self) -> bool {
        let counters = Arc::clone(&self.counters);
        drop(self);
        counters.is_tripped()
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("counters", &self.counters)
            .finish()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let disarm = self.disarm.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(disarm) = disarm {
            disarm();
        }
    }
}

#[cfg(test)]
mod tests;
