//! The load of TESTING.md, written once: 8 keep-alive and 2 new-connection
//! clients of teal's load client (no retries of its own, every outcome counted),
//! bounded in count and time; and waiting until it has done more requests.
//! Tests change only what their story needs (`LoadSpec { .., ..zero_drop(addr) }`).

use std::net::SocketAddr;
use std::time::Duration;

use teal::load::{Load, LoadReport, LoadSpec};

/// The zero-drop load at `target`: 8 keep-alive and 2 new-connection workers,
/// `GET /`, 1 ms pause per request, 10 s per request, bounded at 2,000,000
/// requests and 240 s.
pub fn zero_drop(target: SocketAddr) -> LoadSpec {
    LoadSpec {
        keepalive_connections: 8,
        fresh_connection_workers: 2,
        max_requests: 2_000_000,
        max_duration: Duration::from_secs(240),
        pause: Duration::from_millis(1),
        // `GET /`, 10 s per request.
        ..LoadSpec::new(target)
    }
}

/// [`zero_drop`] on `path`, started.
pub fn steady_load(target: SocketAddr, path: &str) -> Load {
    Load::start(LoadSpec {
        path: path.into(),
        ..zero_drop(target)
    })
}

/// A load across a restart of the daemon itself: `keepalive` and `fresh`
/// workers, 2 ms pause, bounded at 120 s.
pub fn restart_load(target: SocketAddr, keepalive: usize, fresh: usize) -> Load {
    Load::start(LoadSpec {
        keepalive_connections: keepalive,
        fresh_connection_workers: fresh,
        max_duration: Duration::from_secs(120),
        pause: Duration::from_millis(2),
        ..zero_drop(target)
    })
}

/// Prints the report's table and asserts the load ran and nothing failed.
pub fn assert_clean(what: &str, report: &LoadReport) {
    eprintln!("{what}:\n{}", report.render_table());
    assert!(report.sent > 50, "{what}: the load ran: {report:?}");
    assert_eq!(report.failed(), 0, "{what}: failed requests: {report:?}");
}

/// Client workers of [`zero_drop`]: at most this many requests are in flight.
pub const LOAD_CONCURRENCY: u64 = 10;

/// Waits (bounded by `limit`) until the load has finished `n` more requests.
pub async fn finish_more(load: &Load, n: u64, limit: Duration) {
    let start = load.snapshot();
    let done = |r: &LoadReport| r.ok + r.failed();
    let target = done(&start) + n;
    let ok = super::eventually(limit, async || done(&load.snapshot()) >= target).await;
    assert!(ok, "the load did not finish {n} more requests in {limit:?}");
}
