//! h2c (HTTP/2 with prior knowledge) through the builtin proxy: a connection
//! lives as long as it has streams, however long they take; it ends with
//! GOAWAY when idle past the idle timeout and on shutdown; and streams past
//! the advertised limit are refused before they reach an app. Real backends,
//! hyper's HTTP/2 client for a well-behaved client, raw frames for the rest.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use teal::router::Router;
use teal::slot::Slot;
use teal_proxy::ProxyOptions;
use tokio::net::TcpStream;

use crate::support::eventually;
use crate::support::proxy::h2::{self, H2Raw};
use crate::support::proxy::*;

/// One GET over an h2c connection of hyper's client: status and body.
async fn h2_get(
    sender: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    uri: &str,
) -> (u16, String) {
    let req = Request::get(uri).body(Empty::new()).unwrap();
    let response = sender.send_request(req).await.expect("a response head");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the whole body");
    (
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    )
}

/// The case: a request whose answer takes 30 s (three times the idle
/// and header timeouts), and a response streamed over 30 s beside it, on one
/// h2c connection with the default options. Both complete, and the connection
/// serves a request after them. Before the fix the proxy dropped the
/// connection at 10 s, with no GOAWAY, and both got nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_second_request_and_a_30_second_stream_complete_over_h2c() {
    let slow = TestBackend::start("slow").await;
    let drip = DripBackend::start().await;
    let h = Harness::start().await;
    for (name, addr) in [("slow", slow.addr), ("drip", drip.addr)] {
        let host = format!("{name}.test");
        h.proxy
            .set_routes(
                &spec(name, &[&host], None),
                backend(Slot::Blue, &[addr]),
                None,
            )
            .await
            .unwrap();
    }
    let stream = TcpStream::connect(h.addr()).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut a = sender.clone();
    let long_request =
        tokio::spawn(async move { h2_get(&mut a, "http://slow.test/slow?ms=30000").await });
    let mut b = sender.clone();
    let long_stream =
        tokio::spawn(
            async move { h2_get(&mut b, "http://drip.test/drip?chunks=30&ms=1000").await },
        );
    let bound = Duration::from_secs(90);
    let got = tokio::time::timeout(bound, long_request).await;
    let (status, body) = got.expect("the 30 s request within 90 s").unwrap();
    assert_eq!((status, body.as_str()), (200, "slow"));
    let got = tokio::time::timeout(bound, long_stream).await;
    let (status, body) = got.expect("the 30 s stream within 90 s").unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, drip_body(30));
    assert_eq!(slow.slow_done(), 1);
    let mut c = sender.clone();
    let after = tokio::time::timeout(EXCHANGE, h2_get(&mut c, "http://slow.test/")).await;
    assert_eq!(after.expect("one more request").0, 200);
}

/// An h2c connection with no stream for the idle timeout gets GOAWAY (no
/// error) and is closed, and a client's next connection is served. A client
/// that sends the preface and then nothing, not even a PING answer, is closed
/// too. nginx does the same after `keepalive_timeout` (75 s): GOAWAY with
/// NO_ERROR, then close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_h2c_connection_gets_goaway_and_is_closed() {
    let app = TestBackend::start("app").await;
    let h = Harness::with(ProxyOptions {
        header_read_timeout: Duration::from_secs(1),
        ..ProxyOptions::default()
    })
    .await;
    h.route_to(app.addr).await;

    let mut client = H2Raw::connect(h.addr()).await;
    client.server_settings().await;
    let id = client.get("app.test", "/").await;
    let (frames, closed) = client.frames_until_closed(EXCHANGE).await;
    assert!(closed, "closed once idle: {frames:?}");
    let streams = h2::outcomes(&frames);
    let answered = &streams[&id];
    assert!(answered.status_200 && answered.ended, "{frames:?}");
    assert_eq!(answered.body, b"app");
    let goaway = frames.iter().find(|f| f.kind == h2::GOAWAY);
    let goaway = goaway.expect("a GOAWAY before the close");
    assert_eq!(goaway.error_code(), Some(h2::NO_ERROR));

    // The preface, then silence: no stream, no PING answer.
    let mut silent = H2Raw::connect(h.addr()).await;
    silent.answer_pings = false;
    let (frames, closed) = silent.frames_until_closed(EXCHANGE).await;
    assert!(closed, "a silent connection is closed: {frames:?}");
    assert!(frames.iter().any(|f| f.kind == h2::GOAWAY), "{frames:?}");

    let mut next = H2Raw::connect(h.addr()).await;
    next.server_settings().await;
    let id = next.get("app.test", "/").await;
    let (frames, _) = next.frames_until_closed(EXCHANGE).await;
    let streams = h2::outcomes(&frames);
    assert!(streams[&id].status_200 && streams[&id].ended, "{frames:?}");
    assert_eq!(app.hits(), 2);
}

/// A client opening more streams at once than the proxy advertises: the
/// SETTINGS frame carries the configured limit, the streams past it are
/// refused (RST_STREAM REFUSED_STREAM, which a client may retry), and the app
/// never has more requests from the connection than the limit. nginx does the
/// same past `http2_max_concurrent_streams` (128): RST_STREAM with
/// REFUSED_STREAM ("client exceeded http2_max_concurrent_streams").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_the_limit_are_refused_before_the_app() {
    const LIMIT: u32 = 4;
    const OPENED: usize = 10;
    let drip = DripBackend::start().await;
    let h = Harness::with(ProxyOptions {
        max_concurrent_streams: LIMIT,
        ..ProxyOptions::default()
    })
    .await;
    h.route_to(drip.addr).await;

    let mut client = H2Raw::connect(h.addr()).await;
    let settings = client.server_settings().await;
    assert_eq!(
        settings.get(&h2::SETTINGS_MAX_CONCURRENT_STREAMS),
        Some(&LIMIT)
    );
    let requests = vec![("drip.test", "/drip?chunks=3&ms=300"); OPENED];
    let ids = client.get_all(&requests).await;
    let mut frames = Vec::new();
    let resolved = async {
        loop {
            let streams = h2::outcomes(&frames);
            let done = ids.iter().filter(|id| {
                streams
                    .get(id)
                    .is_some_and(|s| s.ended || s.reset.is_some())
            });
            if done.count() == OPENED {
                return streams;
            }
            let frame = client.frame().await.expect("the connection stays open");
            frames.push(frame);
        }
    };
    let streams = tokio::time::timeout(EXCHANGE, resolved)
        .await
        .expect("every stream answered or refused");
    let answered: Vec<_> = streams
        .values()
        .filter(|s| s.status_200 && s.ended)
        .collect();
    let refused = streams
        .values()
        .filter(|s| s.reset == Some(h2::REFUSED_STREAM));
    assert_eq!(answered.len(), LIMIT as usize, "{streams:?}");
    assert_eq!(refused.count(), OPENED - LIMIT as usize, "{streams:?}");
    for stream in answered {
        assert_eq!(stream.body, drip_body(3).as_bytes());
    }
    assert_eq!(drip.started(), LIMIT as usize);
    assert!(drip.most_open() <= LIMIT as usize, "{}", drip.most_open());

    // The connection goes on: a refused stream can be sent again.
    let id = client.get("drip.test", "/drip?chunks=1&ms=10").await;
    assert!(client.completes(id).await, "a new stream answered");
    assert_eq!(drip.started(), LIMIT as usize + 1);
}

/// The proxy shutting down while a response streams: the client gets GOAWAY
/// at once, the stream in progress finishes with all its body, and then the
/// connection closes. nginx's graceful shutdown (`nginx -s quit`) sends
/// GOAWAY and lets active streams finish, as here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_stream_sends_goaway_and_the_stream_finishes() {
    let drip = DripBackend::start().await;
    let h = Harness::start().await;
    h.route_to(drip.addr).await;
    let mut client = H2Raw::connect(h.addr()).await;
    client.server_settings().await;
    let id = client.get("drip.test", "/drip?chunks=10&ms=300").await;
    let started = eventually(Duration::from_secs(10), async || drip.started() == 1).await;
    assert!(started, "the request reached the app");

    h.shutdown.cancel();
    let proxy = h.proxy.clone();
    let closed = tokio::spawn(async move { proxy.wait_closed(Duration::from_secs(30)).await });
    let (frames, closed_by_proxy) = client.frames_until_closed(EXCHANGE).await;
    assert!(closed_by_proxy, "the connection closes after its stream");
    let goaway = frames.iter().position(|f| f.kind == h2::GOAWAY);
    let goaway = goaway.expect("a GOAWAY");
    assert_eq!(frames[goaway].error_code(), Some(h2::NO_ERROR));
    let last_data = frames.iter().rposition(|f| f.stream == id);
    assert!(
        last_data.is_some_and(|last| last > goaway),
        "the stream went on after the GOAWAY: {frames:?}"
    );
    let streams = h2::outcomes(&frames);
    assert!(streams[&id].ended, "{frames:?}");
    assert_eq!(streams[&id].body, drip_body(10).as_bytes());
    assert_eq!(drip.finished(), 1);
    tokio::time::timeout(EXCHANGE, closed)
        .await
        .expect("the proxy closed")
        .unwrap();
}

/// `[proxy] max_concurrent_streams` reaches the daemon's proxy: its SETTINGS
/// carry the configured value (and the default is nginx's 128).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_stream_limit_is_what_the_daemon_advertises() {
    for (configured, advertised) in [(Some(3), 3), (None, 128)] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::support::config(dir.path(), vec![]);
        config.proxy.max_concurrent_streams = configured;
        let daemon = crate::support::TestDaemon::start(&config).await;
        let mut client = H2Raw::connect(daemon.addr).await;
        let settings = client.server_settings().await;
        assert_eq!(
            settings.get(&h2::SETTINGS_MAX_CONCURRENT_STREAMS),
            Some(&advertised)
        );
        drop(client);
        daemon.stop().await;
    }
}

/// Rapid reset (CVE-2023-44487): a client that opens streams and cancels
/// each at once, a thousand in one burst, to make the proxy start requests
/// it never has to finish. The connection ends with GOAWAY
/// (ENHANCE_YOUR_CALM) once more than 20 streams were cancelled before they
/// were served, and the app sees at most that many requests; a new
/// connection is served. nginx (since 1.25.3) limits the streams it opens
/// per read to twice `http2_max_concurrent_streams` and closes the connection
/// past `keepalive_requests` (1000) streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rapid_reset_flood_ends_the_connection() {
    const BURST: usize = 1000;
    let drip = DripBackend::start().await;
    let h = Harness::start().await;
    h.route_to(drip.addr).await;
    let mut client = H2Raw::connect(h.addr()).await;
    client.server_settings().await;
    client
        .open_and_cancel("drip.test", "/drip?chunks=1&ms=10", BURST)
        .await;
    let (frames, closed) = client.frames_until_closed(EXCHANGE).await;
    assert!(closed, "the flooding connection is closed");
    let goaway = frames.iter().find(|f| f.kind == h2::GOAWAY);
    let goaway = goaway.expect("a GOAWAY");
    assert_eq!(goaway.error_code(), Some(h2::ENHANCE_YOUR_CALM));
    assert!(
        drip.started() <= 20,
        "{} requests reached the app",
        drip.started()
    );

    let mut next = H2Raw::connect(h.addr()).await;
    next.server_settings().await;
    let id = next.get("drip.test", "/drip?chunks=1&ms=10").await;
    assert!(next.completes(id).await, "a new connection is served");
}

/// Rapid reset, paced so that the proxy takes each stream before its reset
/// arrives (h2's limit on streams reset before they are served does not
/// apply, and a cancelled stream no longer counts against the stream limit):
/// a client that cancels more than twice the stream limit in a second loses
/// its connection, and the app sees a bounded number of requests (before the
/// limit, 400 such streams sent 49 requests to the app, at the client's
/// pace). nginx 1.22 bounds such a client only by `keepalive_requests` (1000
/// streams a connection); since 1.25.3 it also limits the streams it opens
/// per read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_rapid_reset_flood_ends_the_connection() {
    const LIMIT: u32 = 4;
    const STREAMS: usize = 400;
    let drip = DripBackend::start().await;
    let h = Harness::with(ProxyOptions {
        max_concurrent_streams: LIMIT,
        ..ProxyOptions::default()
    })
    .await;
    h.route_to(drip.addr).await;
    let mut client = H2Raw::connect(h.addr()).await;
    client.server_settings().await;
    let pause = Duration::from_millis(2);
    let flood = client.open_and_cancel_paced("drip.test", "/drip?chunks=1&ms=1000", STREAMS, pause);
    let sent = tokio::time::timeout(Duration::from_secs(60), flood)
        .await
        .expect("the flood ends");
    assert!(
        sent < STREAMS,
        "the proxy took all {STREAMS} cancelled streams"
    );
    let (_, closed) = client.frames_until_closed(EXCHANGE).await;
    assert!(closed, "the flooding connection is closed");
    // The cancellations allowed (twice the limit), the one past them, the
    // streams open when the connection closed (the limit), and as many again
    // for streams taken while the close was on its way.
    let bound = 4 * LIMIT as usize + 1;
    assert!(drip.started() <= bound, "the app saw {}", drip.started());

    // A client that lets its streams finish is not affected: more streams
    // than the cancellation limit, one after another, on one connection.
    let mut next = H2Raw::connect(h.addr()).await;
    next.server_settings().await;
    for _ in 0..3 * LIMIT {
        let id = next.get("drip.test", "/drip?chunks=1&ms=1").await;
        assert!(next.completes(id).await, "each stream answered");
    }
}

/// The case end to end: the real daemon and the demo app (a process
/// instance), an h2c client, a request answered after 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_second_request_over_h2c_completes_through_the_daemon() {
    use crate::support::{TestDaemon, config, demo_service, version_of};
    let dir = tempfile::tempdir().unwrap();
    let spec = demo_service("web", dir.path(), 1);
    let daemon = TestDaemon::start(&config(dir.path(), vec![])).await;
    daemon.deploy(&spec, "1.0.0").await.assert_live();
    let stream = TcpStream::connect(daemon.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let long = h2_get(&mut sender, "http://localhost/slow?ms=30000");
    let got = tokio::time::timeout(Duration::from_secs(90), long).await;
    let (status, body) = got.expect("the 30 s request within 90 s");
    assert_eq!(status, 200);
    assert_eq!(version_of(&body).as_deref(), Some("1.0.0"), "{body}");
    daemon.stop().await;
}
