//! h2c's limits against hostile clients: the HTTP/2 settings hyper serves
//! clients with ([`configure`]), and the rapid-reset count that hyper and h2
//! leave out ([`Cancels`]). How long an h2c connection lives is `serve`'s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::Notify;

use crate::ProxyOptions;

/// Streams reset by the client before they were served, beyond which the
/// connection ends (h2's default).
const MAX_PENDING_RESETS: usize = 20;

/// Streams the proxy reset for the client's protocol errors, beyond which the
/// connection ends (hyper's default).
const MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// With nothing received for this long, the proxy sends a PING...
const PING_INTERVAL: Duration = Duration::from_secs(30);

/// ...and closes the connection if its answer does not come within this.
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// Response bytes queued per stream, at most.
const MAX_SEND_BUF: usize = 64 * 1024;

/// Sets the limits of every h2c connection the proxy serves.
pub(super) fn configure(http2: &mut http2::Builder<TokioExecutor>, opts: &ProxyOptions) {
    http2
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(opts.max_header_bytes).unwrap_or(u32::MAX))
        // Advertised in SETTINGS; streams past it get REFUSED_STREAM.
        .max_concurrent_streams(opts.max_concurrent_streams.max(1))
        // Rapid reset (CVE-2023-44487): streams the client resets before
        // they are served, and streams the proxy had to reset for the
        // client's errors, beyond these counts end the connection with
        // GOAWAY (ENHANCE_YOUR_CALM). h2's and hyper's defaults, pinned.
        .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESETS)
        // A client that sends nothing at all, not even a PING answer, for
        // this long is gone (or not reading): its streams end with it.
        .keep_alive_interval(PING_INTERVAL)
        .keep_alive_timeout(PING_TIMEOUT)
        // Response bytes queued per stream for a client that does not read
        // (hyper's default is 400 KB): with the stream limit, this bounds
        // what one connection can make the proxy hold.
        .max_send_buf_size(MAX_SEND_BUF);
}

/// Rapid reset that h2's own limit misses: a client that resets each stream
/// just after the proxy took it makes the proxy start requests toward an app
/// that no stream counts against. [`Cancels::exceeded`] fires once more than
/// `limit` responses were given up by the client in one period (`serve_h2`
/// starts one per `PARK_CHECK`), and the connection is then closed.
pub(super) struct Cancels {
    /// Cancellations, ever.
    total: AtomicU64,
    /// `total` when the current period began.
    period_start: AtomicU64,
    limit: u64,
    /// Woken when a period's cancellations pass `limit`.
    exceeded: Notify,
}

impl Cancels {
    /// Twice the streams a client may have open at once: a client may cancel
    /// every stream it has, and as many again, in one period.
    pub(super) fn new(opts: &ProxyOptions) -> Cancels {
        Cancels {
            total: AtomicU64::new(0),
            period_start: AtomicU64::new(0),
            limit: 2 * u64::from(opts.max_concurrent_streams.max(1)),
            exceeded: Notify::new(),
        }
    }

    /// A response the client gave up before its end.
    pub(super) fn count(&self) {
        let total = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        if total - self.period_start.load(Ordering::Relaxed) > self.limit {
            self.exceeded.notify_one();
        }
    }

    pub(super) fn new_period(&self) {
        let total = self.total.load(Ordering::Relaxed);
        self.period_start.store(total, Ordering::Relaxed);
    }

    /// Resolves once a period's cancellations passed the limit.
    pub(super) async fn exceeded(&self) {
        self.exceeded.notified().await;
    }

    pub(super) fn limit(&self) -> u64 {
        self.limit
    }
}
