//! The builtin proxy's side of a verify window, request by request: counting the
//! watched slot, the answer that crosses the error budget switching production
//! back by itself, and no switch at all from an answer that arrives after the
//! window was disarmed.

use std::time::Duration;

use crate::support::eventually;
use crate::support::proxy::*;
use teal::router::{ErrorBudget, Router};
use teal::slot::Slot;

const HOST: &str = "app.test";

/// A proxy whose production went from blue ("old") to green ("new"), with
/// blue's pool kept (as a deploy keeps the previous slot warm).
async fn switched(h: &Harness, old: &TestBackend, new: &TestBackend) {
    let spec = spec("web", &[], None);
    h.proxy
        .set_routes(&spec, backend(Slot::Blue, &[old.addr]), None)
        .await
        .unwrap();
    h.proxy
        .set_routes(&spec, backend(Slot::Green, &[new.addr]), None)
        .await
        .unwrap();
}

async fn answer(h: &Harness, path: &str) -> (u16, String) {
    let reply = get_fresh(h.addr(), HOST, path).await.expect("an answer");
    (reply.status, reply.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_that_crosses_the_budget_switches_production_back() {
    let h = Harness::start().await;
    let (old, new) = (
        TestBackend::start("old").await,
        TestBackend::start("new").await,
    );
    let spec = spec("web", &[], None);
    h.proxy
        .set_routes(&spec, backend(Slot::Blue, &[old.addr]), None)
        .await
        .unwrap();
    // Armed before the switch, as a deploy does: green's pool does not exist yet.
    let budget = ErrorBudget {
        max_error_rate: 0.25,
        min_requests: 4,
    };
    let watch = h
        .proxy
        .watch("web", Slot::Green, Some(Slot::Blue), budget)
        .expect("the builtin proxy watches");
    h.proxy
        .set_routes(&spec, backend(Slot::Green, &[new.addr]), None)
        .await
        .unwrap();

    assert_eq!(answer(&h, "/").await, (200, "new".into()));
    assert_eq!(answer(&h, "/status/500").await, (500, "new".into()));
    assert!(
        !watch.counters().is_tripped(),
        "1 of at least 4 is 25%: not above"
    );
    assert_eq!(answer(&h, "/status/500").await, (500, "new".into()));
    assert!(watch.counters().is_tripped(), "2 of at least 4 crosses 25%");
    // The very next request goes to the previous slot: no deploy task involved.
    assert_eq!(answer(&h, "/").await, (200, "old".into()));
    assert_eq!(answer(&h, "/status/500").await.1, "old");

    let stats = watch.counters().snapshot();
    assert_eq!((stats.requests, stats.errors, stats.completed), (3, 2, 3));
    assert_eq!(stats.upstream_failures, 0);
    assert!(stats.latency.quantile(0.99).is_some());
    assert!(watch.disarm());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_after_the_window_switches_nothing() {
    let h = Harness::start().await;
    let (old, new) = (
        TestBackend::start("old").await,
        TestBackend::start("new").await,
    );
    switched(&h, &old, &new).await;
    let any_error = ErrorBudget {
        max_error_rate: 0.0,
        min_requests: 0,
    };
    let watch = h
        .proxy
        .watch("web", Slot::Green, Some(Slot::Blue), any_error)
        .unwrap();
    // A request of the window whose failure only arrives after the window ended.
    let addr = h.addr();
    let late = tokio::spawn(async move { get_fresh(addr, HOST, "/status/500?ms=500").await });
    let started = eventually(Duration::from_secs(5), async || new.hits() >= 1).await;
    assert!(started, "the late request reached the new slot");
    assert_eq!(watch.counters().snapshot().requests, 1);
    assert!(!watch.disarm(), "nothing crossed while armed");

    let reply = late.await.unwrap().unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (500, "new"));
    assert_eq!(answer(&h, "/").await, (200, "new".into()), "still on green");
    // And a slot that is no longer watched is not counted.
    let again = h
        .proxy
        .watch("web", Slot::Green, Some(Slot::Blue), any_error)
        .unwrap();
    assert_eq!(again.counters().snapshot().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_upstream_requests_count_as_errors() {
    let h = Harness::start().await;
    let old = TestBackend::start("old").await;
    let spec = spec("web", &[], None);
    h.proxy
        .set_routes(&spec, backend(Slot::Blue, &[old.addr]), None)
        .await
        .unwrap();
    let watch = h
        .proxy
        .watch(
            "web",
            Slot::Green,
            Some(Slot::Blue),
            ErrorBudget {
                max_error_rate: 0.5,
                min_requests: 1,
            },
        )
        .unwrap();
    // Green's only instance refuses connections: the proxy answers 502 itself.
    let dead = unused_addr();
    h.proxy
        .set_routes(&spec, backend(Slot::Green, &[dead]), None)
        .await
        .unwrap();
    let (status, _) = answer(&h, "/").await;
    assert!(status >= 500, "{status}");
    let stats = watch.counters().snapshot();
    assert_eq!((stats.errors, stats.upstream_failures), (1, 1));
    assert!(stats.tripped);
    assert_eq!(answer(&h, "/").await, (200, "old".into()));
}
