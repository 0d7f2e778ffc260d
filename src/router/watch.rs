//! Watching one slot during a post-switch verify window: the counters the router
//! keeps while a [`Watch`] is armed, the error budget it enforces, and the latency
//! histogram behind `max_p99`.
//!
//! The router counts (it sees every request); `deploy/` reads and judges. One rule
//! is enforced by the router itself, on the request path: the moment the window's
//! failures cross the [`ErrorBudget`], production moves back to the fallback slot
//! in one atomic step, before any further request can reach the bad slot. That
//! makes "the failures clients saw" bounded by the budget plus what was already in
//! flight, whatever the scheduler does with the deploy task. Latency is only
//! measured while a watch is armed, so the proxy's hot path pays one relaxed load
//! otherwise.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// How many failed requests a window tolerates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    /// Requests that started on the watched slot since the watch was armed.
    pub requests: u64,
    /// Of those, how many ended with a 5xx (including the router's own 502/504).
    pub errors: u64,
    /// Of the errors, requests no upstream answered (connect or transport failure).
    pub upstream_failures: u64,
    /// Requests that finished (got an answer or failed).
    pub completed: u64,
    /// Time to the response head of the completed requests.
    pub latency: LatencySnapshot,
    /// True once the budget was crossed and the router moved production back.
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

/// The counters of one armed window, shared by the router (writer) and the
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

/// An armed watch. Dropping it disarms the router's counting.
pub struct Watch {
    counters: Arc<WindowCounters>,
    /// Undoes the arming in the router (set by the router that armed it).
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
    /// returns the router switches nothing any more for it; a switch back it made
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

/// Buckets per power of two, as a power of two: 8 buckets, so a percentile is
/// within about 12% of the truth. Plenty to compare against a threshold.
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// Microseconds below this have a bucket each.
const LINEAR: u64 = 2 * SUB;
/// Larger values (about 19 hours) are clamped.
const MAX_MICROS: u64 = (1 << 36) - 1;
const BUCKETS: usize = bucket(MAX_MICROS) + 1;

/// A fixed-size, lock-free latency histogram (microseconds, log-linear buckets).
#[derive(Debug)]
struct AtomicHistogram {
    counts: Box<[AtomicU64]>,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        AtomicHistogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl AtomicHistogram {
    fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .min(MAX_MICROS);
        self.counts[bucket(micros)].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> LatencySnapshot {
        LatencySnapshot {
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
        }
    }
}

/// A copy of a latency histogram.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySnapshot {
    counts: Vec<u64>,
}

impl LatencySnapshot {
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The latency below which a share `q` (0..=1) of the samples fall: the top
    /// of the bucket holding that sample. None without samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_micros(lower_bound(i + 1) - 1));
            }
        }
        None
    }
}

const fn bucket(micros: u64) -> usize {
    if micros < LINEAR {
        return micros as usize;
    }
    let msb = 63 - micros.leading_zeros();
    let shift = msb - SUB_BITS;
    let sub = (micros >> shift) - SUB;
    (LINEAR + (shift as u64 - 1) * SUB + sub) as usize
}

/// The smallest value that lands in bucket `i`.
const fn lower_bound(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let shift = (i - LINEAR) / SUB + 1;
    let sub = (i - LINEAR) % SUB;
    (SUB + sub) << shift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous() {
        for i in 0..BUCKETS - 1 {
            assert_eq!(bucket(lower_bound(i)), i);
            assert!(lower_bound(i) < lower_bound(i + 1));
        }
        for micros in [0, 1, 15, 16, 17, 1000, 123_456, MAX_MICROS] {
            let i = bucket(micros);
            assert!(lower_bound(i) <= micros && micros < lower_bound(i + 1));
        }
    }

    #[test]
    fn p99_is_close() {
        let h = AtomicHistogram::default();
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        let p99 = h.snapshot().quantile(0.99).unwrap().as_secs_f64();
        assert!((p99 / 0.990 - 1.0).abs() < 0.13, "{p99}");
        assert_eq!(AtomicHistogram::default().snapshot().quantile(0.99), None);
    }

    #[test]
    fn budget_takes_the_rate_over_at_least_min_requests() {
        let budget = ErrorBudget {
            max_error_rate: 0.1,
            min_requests: 20,
        };
        assert!(!budget.crossed(0, 0));
        assert!(!budget.crossed(2, 2), "2 of 20 is 10%: not above");
        assert!(
            budget.crossed(3, 3),
            "3 of at least 20 is above 10% whatever follows"
        );
        assert!(!budget.crossed(10, 100));
        assert!(budget.crossed(11, 100));
        let zero = ErrorBudget {
            max_error_rate: 0.0,
            min_requests: 0,
        };
        assert!(zero.crossed(1, 1000));
    }

    #[test]
    fn the_crossing_answer_trips_once() {
        let w = WindowCounters::new(ErrorBudget {
            max_error_rate: 0.5,
            min_requests: 2,
        });
        for _ in 0..4 {
            w.request();
        }
        assert!(!w.answered(Duration::from_millis(1), true), "1 of 4");
        assert!(!w.answered(Duration::from_millis(1), true), "2 of 4");
        assert!(w.answered(Duration::from_millis(1), true), "3 of 4 crosses");
        assert!(!w.failed(Duration::from_millis(1)), "already tripped");
        let s = w.snapshot();
        assert_eq!(
            (s.requests, s.errors, s.upstream_failures, s.completed),
            (4, 4, 1, 4)
        );
        assert!(s.tripped);
    }
}
