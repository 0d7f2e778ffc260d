//! TESTING.md's zero-downtime story (`support::zero_downtime`) with the process
//! runtime and the builtin proxy: two demo-app instances per slot, 22 deploys
//! alternating versions under keep-alive and new-connection load with no client
//! retries, a broken deploy, a rollback, a slow request and a websocket spanning
//! a switch (the websocket still usable until the drain deadline, then closed
//! with 1001 "going away" though the standby keeps running). The test fails
//! on a single failed request.

use std::time::Duration;

use crate::support::zero_downtime::Story;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_failed_requests_across_many_switches() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = demo_service("web", dir.path(), 2);
    spec.drain.timeout = Duration::from_secs(3);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    let run = Story::new(spec).run(&d).await;
    d.stop().await;
    run.assert_zero_failed_requests();
}
