//! Helpers for the hook, verify and migration tests: hook specs from shell
//! snippets, a steady load, and reading the last history entry.

use std::net::SocketAddr;
use std::time::Duration;

use teal::load::{Load, LoadSpec};
use teal::spec::{HookPlace, HookSpec};
use teal::state::HistoryEntry;

use super::TestDaemon;

/// A hook running `script` with bash (`$1`.. are `args`), 30 s timeout.
pub fn bash(script: &str, args: &[&str]) -> HookSpec {
    let mut command = vec![
        "bash".to_string(),
        "-c".into(),
        script.into(),
        "hook".into(),
    ];
    command.extend(args.iter().map(|a| a.to_string()));
    HookSpec {
        command,
        timeout: Duration::from_secs(30),
        run_in: HookPlace::Host,
    }
}

/// TESTING.md's load: 8 keep-alive and 2 new-connection workers, no retries,
/// bounded at 2,000,000 requests and 240 s, with a short pause per request.
pub fn steady_load(target: SocketAddr, path: &str) -> Load {
    Load::start(LoadSpec {
        target,
        host: None,
        path: path.into(),
        keepalive_connections: 8,
        fresh_connection_workers: 2,
        max_requests: 2_000_000,
        max_duration: Duration::from_secs(240),
        request_timeout: Duration::from_secs(10),
        pause: Duration::from_millis(1),
    })
}

/// Client workers of [`steady_load`]: at most this many requests are in flight.
pub const LOAD_CONCURRENCY: u64 = 10;

/// Waits (bounded by `limit`) until the load has finished `n` more requests.
pub async fn finish_more(load: &Load, n: u64, limit: Duration) {
    let start = load.snapshot();
    let done = |r: &teal::load::LoadReport| r.ok + r.failed();
    let target = done(&start) + n;
    let ok = super::eventually(limit, || {
        let now = done(&load.snapshot());
        async move { now >= target }
    })
    .await;
    assert!(ok, "the load did not finish {n} more requests in {limit:?}");
}

/// The service's last history entry.
pub async fn last_entry(d: &TestDaemon, service: &str) -> HistoryEntry {
    let history = d.client.history(service).await.expect("history");
    history.entries.last().cloned().expect("an entry")
}

/// The step names of an entry's timeline, in order.
pub fn steps(entry: &HistoryEntry) -> Vec<String> {
    entry.timeline.iter().map(|s| s.step.clone()).collect()
}
