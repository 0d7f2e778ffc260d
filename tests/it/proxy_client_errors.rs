//! Client errors are the client's (issue 15): a request the client breaks (an
//! invalid chunk size, a `Content-Length` body cut short, a malformed head)
//! gets a 400, or only a close when the client can no longer read, and is
//! counted as a client error: never as an upstream failure or a 5xx, so it
//! can never fail a verify window. Each kind on a connection the lean path
//! serves and on one hyper's path already serves. nginx answers these 400 too
//! ("client sent invalid chunked body", "client prematurely closed
//! connection", "client sent invalid header line") and does not count them
//! against the upstream.

use std::time::Duration;

use teal::router::TrafficStats;
use teal::slot::Slot;
use tokio::io::AsyncWriteExt;

use crate::support::eventually;
use crate::support::proxy::*;

/// A proxy routing to a test app.
async fn started() -> (TestBackend, Harness) {
    let app = TestBackend::start("app").await;
    let h = Harness::start().await;
    h.route_to(app.addr).await;
    (app, h)
}

/// Sends `request` on a `path` connection, then (with `shut`) ends the
/// client's sending half, and returns all the proxy sent back.
async fn broken_request(h: &Harness, path: Path, request: &[u8], shut: bool) -> String {
    let mut stream = connection(h, path).await;
    stream.write_all(request).await.unwrap();
    if shut {
        stream.shutdown().await.unwrap();
    }
    read_to_close(&mut stream).await
}

fn blue(h: &Harness) -> TrafficStats {
    h.proxy.stats("web", Slot::Blue)
}

/// The first request of each connection was good: `broken` more broke.
fn assert_client_errors(h: &Harness, path: Path, broken: u64) {
    let stats = blue(h);
    assert_eq!(stats.client_errors, broken, "{path:?}: {stats:?}");
    assert_eq!(stats.upstream_failures, 0, "{path:?}: {stats:?}");
    assert_eq!(stats.responses_5xx, 0, "{path:?}: {stats:?}");
}

/// Sends a request whose body the client breaks, once per path, each on a
/// fresh proxy: the client gets a 400 (or, with `may_close`, possibly only a
/// close) and the slot counts one client error, no failure.
async fn body_broken_on_each_path(request: &[u8], shut: bool, may_close: bool) {
    for path in PATHS {
        let (_app, h) = started().await;
        let reply = broken_request(&h, path, request, shut).await;
        assert!(
            reply.starts_with("HTTP/1.1 400") || (may_close && reply.is_empty()),
            "{path:?}: {reply}"
        );
        assert_client_errors(&h, path, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_chunk_size_is_a_client_error_answered_400() {
    let request = b"POST /echo HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    body_broken_on_each_path(request, false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_short_by_the_client_is_a_client_error() {
    // 10 bytes of 100, then the client stops sending (it still reads).
    let request = b"POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: 100\r\n\r\nonly ten b";
    body_broken_on_each_path(request, true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_head_is_refused_before_routing_and_counted() {
    for path in PATHS {
        let (app, h) = started().await;
        let hits = app.hits();
        let reply = broken_request(
            &h,
            path,
            b"GET / HTTP/1.1\r\nHost: app\r\nno colon in this line\r\n\r\n",
            false,
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{path:?}: {reply}");
        // Counted when hyper's connection ends, just after its 400.
        let counted = eventually(Duration::from_secs(10), async || {
            h.proxy.client_connections().malformed_requests == 1
        })
        .await;
        assert!(counted, "{path:?}: {:?}", h.proxy.client_connections());
        // The good first request only: the app saw nothing of the bad one.
        assert_eq!(app.hits(), hits + 1, "{path:?}");
        assert_client_errors(&h, path, 0);
        assert_eq!(blue(&h).requests, 1, "{path:?}: only the good request");
    }
}
