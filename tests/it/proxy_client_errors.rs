//! Client errors are the client's (issue 15): a request the client breaks (an
//! invalid chunk size, a `Content-Length` body cut short, a malformed head)
//! gets a 400, or only a close when the client can no longer read, and is
//! counted as a client error: never as an upstream failure or a 5xx, so it
//! can never fail a verify window. Each kind on a connection the lean path
//! serves and on one hyper's path already serves. nginx answers these 400 too
//! ("client sent invalid chunked body", "client prematurely closed
//! connection", "client sent invalid header line") and does not count them
//! against the upstream.
//!
//! Also what is refused or dropped before routing (`hyper/screen.rs`): a
//! missing or invalid Host (400, counted as a malformed request, the app sees
//! nothing), and header names with an underscore (dropped by default, passed
//! or refused as configured).

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use teal::router::TrafficStats;
use teal::slot::Slot;
use teal_proxy::{ProxyOptions, UnderscoreHeaders};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::eventually;
use crate::support::proxy::*;

/// A proxy routing to a test app.
async fn started() -> (TestBackend, Harness) {
    started_with(ProxyOptions::default()).await
}

async fn started_with(opts: ProxyOptions) -> (TestBackend, Harness) {
    let app = TestBackend::start("app").await;
    let h = Harness::with(opts).await;
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

/// Waits until the proxy has counted `n` malformed requests in all.
async fn malformed_counted(h: &Harness, n: u64) -> bool {
    eventually(Duration::from_secs(10), async || {
        h.proxy.client_connections().malformed_requests == n
    })
    .await
}

/// RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, with several, or
/// with an invalid one; before routing, so the app sees nothing, and counted
/// as malformed (never against the slot). A Host with user-info routed to the
/// host after the `@` before. nginx 1.22 answers 400 ("client sent HTTP/1.1
/// request without Host header", "client sent duplicate host header",
/// "client sent invalid host header") to all but the user-info and bad-port
/// ones: its Host check stops at the first `:`, so it routes
/// `api.example:80@web.example` to `api.example` and ignores `a:b`'s port.
/// teal follows the RFC there. HTTP/1.0 needs no Host (nginx serves it too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_invalid_host_is_refused_400_before_routing() {
    let bad: [&[u8]; 7] = [
        b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: api.example:80@web.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: \r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: app:http\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: app/../x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: app\r\nHost: other\r\n\r\n",
        b"GET http://app/ HTTP/1.1\r\n\r\n",
    ];
    for path in PATHS {
        let (app, h) = started().await;
        for (i, request) in bad.iter().enumerate() {
            let hits = app.hits();
            let reply = broken_request(&h, path, request, false).await;
            let shown = String::from_utf8_lossy(request);
            assert!(
                reply.starts_with("HTTP/1.1 400"),
                "{path:?} {shown:?}: {reply}"
            );
            assert!(reply.contains("Host"), "{path:?} {shown:?}: {reply}");
            assert!(
                malformed_counted(&h, i as u64 + 1).await,
                "{path:?} {shown:?}"
            );
            // The good first request of the connection only.
            assert_eq!(app.hits(), hits + 1, "{path:?} {shown:?}");
        }
        assert_client_errors(&h, path, 0);
        let reply = raw_exchange(h.addr(), b"GET / HTTP/1.0\r\n\r\n").await;
        assert!(
            reply.starts_with("HTTP/1.") && reply.contains(" 200 "),
            "{path:?}: {reply}"
        );
    }
}

/// A request with a header name that has an underscore, on a `path`
/// connection: what the app saw of the request head (`/headers`), or the
/// proxy's answer when it is not a 200.
async fn underscored(h: &Harness, path: Path) -> String {
    let mut stream = connection(h, path).await;
    let request = b"GET /headers HTTP/1.1\r\nHost: app\r\nX_Forwarded_For: 6.6.6.6\r\n\
        X-Kept: 1\r\nConnection: close\r\n\r\n";
    stream.write_all(request).await.unwrap();
    read_to_close(&mut stream).await
}

/// nginx's `underscores_in_headers off` (its default, with
/// `ignore_invalid_headers on`): a header line whose name has an underscore
/// is ignored (logged at info level), not forwarded, and the request goes on.
/// Apps that map `-` and `_` to one name (CGI, WSGI, Rack) would otherwise
/// read `X_Forwarded_For` as the `X-Forwarded-For` the proxy sets. teal
/// drops them by default, passes them with `pass` (nginx's
/// `underscores_in_headers on`) and answers 400 with `refuse`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_names_with_an_underscore_are_dropped_passed_or_refused() {
    let with = |underscores| ProxyOptions {
        underscores_in_headers: underscores,
        ..ProxyOptions::default()
    };
    for path in PATHS {
        let (_app, h) = started().await;
        let seen = underscored(&h, path).await;
        assert!(seen.starts_with("HTTP/1.1 200"), "{path:?}: {seen}");
        assert!(seen.contains("x-kept: 1"), "{path:?}: {seen}");
        assert!(
            !seen.to_ascii_lowercase().contains("x_forwarded_for"),
            "{path:?}: {seen}"
        );
        assert!(!seen.contains("6.6.6.6"), "{path:?}: {seen}");

        let (_app, h) = started_with(with(UnderscoreHeaders::Pass)).await;
        let seen = underscored(&h, path).await;
        assert!(seen.starts_with("HTTP/1.1 200"), "{path:?}: {seen}");
        assert!(
            seen.contains("x_forwarded_for: 6.6.6.6"),
            "{path:?}: {seen}"
        );

        let (app, h) = started_with(with(UnderscoreHeaders::Refuse)).await;
        let reply = underscored(&h, path).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{path:?}: {reply}");
        assert!(malformed_counted(&h, 1).await, "{path:?}");
        assert_eq!(app.hits(), 1, "{path:?}: the good first request only");
    }
}

/// h2c gets the same screening: an `:authority` with user-info is refused
/// (nginx's HTTP/2 checks `:authority` as a Host: "client sent invalid host
/// header", except for user-info as above), and a header name with an
/// underscore is dropped (nginx's HTTP/2 ignores it too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_requests_are_screened_the_same_way() {
    let (app, h) = started().await;
    let stream = TcpStream::connect(h.addr()).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut send = async |req: Request<Full<Bytes>>| {
        let exchange = async {
            let response = sender.send_request(req).await.unwrap();
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        };
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .unwrap()
    };
    let user_info = Request::get("http://api.example:80@web.example/headers")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, body) = send(user_info).await;
    assert_eq!(status, 400, "{body}");
    assert!(malformed_counted(&h, 1).await);
    assert_eq!(app.hits(), 0);
    let underscore = Request::get("http://app/headers")
        .header("x_forwarded_for", "6.6.6.6")
        .header("x-kept", "1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, body) = send(underscore).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("x-kept: 1"), "{body}");
    assert!(!body.contains("6.6.6.6"), "{body}");
}
