//! A load client that counts every outcome, for the demo, the tests and benchmarks.
//!
//! It never retries: one request is one outcome, a 2xx, another status, or a
//! transport error. It stops by flag and awaits what is still in flight. Every
//! worker loop is bounded by the stop flag, `max_requests` and `max_duration`.
//! It measures; it does not judge (callers assert on the [`LoadReport`]).

mod connect;
mod report;
mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use connect::LoadTls;
pub use report::{LoadReport, NO_VERSION};
use worker::Shared;

/// What traffic to send, and when to stop.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub target: SocketAddr,
    /// The Host header (HTTP/2: `:authority`); the target's `ip:port` when None.
    pub host: Option<String>,
    /// Every connection over TLS (HTTP/2 when ALPN chooses `h2`); plain HTTP/1.1
    /// when None.
    pub tls: Option<LoadTls>,
    /// Path (and query) requested with GET.
    pub path: String,
    /// Workers that each hold one HTTP/1.1 keep-alive connection.
    pub keepalive_connections: usize,
    /// Workers that open a new TCP (and TLS) connection per request
    /// (`Connection: close` on HTTP/1.1).
    pub fresh_connection_workers: usize,
    /// Hard bound on requests started, over all workers.
    pub max_requests: u64,
    /// Hard bound on time: no request starts after it.
    pub max_duration: Duration,
    /// Bound on one request, connect and whole body included.
    pub request_timeout: Duration,
    /// Pause between a worker's requests (zero: none).
    pub pause: Duration,
}

impl LoadSpec {
    /// GET `/` with 8 keep-alive and 2 fresh-connection workers, at most 1,000,000
    /// requests or 60 s, 10 s per request, no pause.
    pub fn new(target: SocketAddr) -> LoadSpec {
        LoadSpec {
            target,
            host: None,
            tls: None,
            path: "/".into(),
            keepalive_connections: 8,
            fresh_connection_workers: 2,
            max_requests: 1_000_000,
            max_duration: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            pause: Duration::ZERO,
        }
    }
}

/// Load that is running. Dropping it sets the stop flag without waiting.
pub struct Load {
    shared: Arc<Shared>,
    /// The workers; each ends on the stop flag or a bound, after its in-flight request.
    workers: Vec<JoinHandle<()>>,
}

impl Load {
    /// Spawns the workers on the current tokio runtime (panics outside one).
    pub fn start(spec: LoadSpec) -> Load {
        let started = Instant::now();
        let deadline = started
            .checked_add(spec.max_duration)
            .unwrap_or(started + Duration::from_secs(365 * 24 * 3600));
        let (keepalive, fresh) = (spec.keepalive_connections, spec.fresh_connection_workers);
        let shared = Arc::new(Shared {
            spec,
            sent: AtomicU64::new(0),
            keepalive_connects: AtomicU64::new(0),
            tls_resumed: AtomicU64::new(0),
            tally: Mutex::default(),
            stop: CancellationToken::new(),
            started,
            deadline,
        });
        let workers = std::iter::repeat_n(true, keepalive)
            .chain(std::iter::repeat_n(false, fresh))
            .map(|keepalive| tokio::spawn(worker::run(shared.clone(), keepalive)))
            .collect();
        Load { shared, workers }
    }

    /// The counters so far; `sent - ok - failed()` requests are in flight.
    pub fn snapshot(&self) -> LoadReport {
        self.report(self.shared.started.elapsed())
    }

    /// Sets the stop flag, awaits the requests in flight and returns the final report.
    pub async fn stop(mut self) -> LoadReport {
        self.shared.stop.cancel();
        self.join().await
    }

    /// Awaits the end the bounds (`max_requests`, `max_duration`) put to the load.
    pub async fn wait(mut self) -> LoadReport {
        self.join().await
    }

    async fn join(&mut self) -> LoadReport {
        for worker in std::mem::take(&mut self.workers) {
            // A worker that panicked has nothing more to count.
            let _ = worker.await;
        }
        self.report(self.shared.started.elapsed())
    }

    fn report(&self, elapsed: Duration) -> LoadReport {
        let tally = self.shared.tally();
        // Read after the tally, so that `sent` covers every outcome in it.
        let sent = self.shared.sent.load(Ordering::SeqCst);
        let mut report = tally.report(sent, elapsed);
        report.keepalive_connects = self.shared.keepalive_connects.load(Ordering::Relaxed);
        report.tls_resumed = self.shared.tls_resumed.load(Ordering::Relaxed);
        report
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}
