//! Parking: an idle HTTP/1.1 keep-alive connection gives back its buffers and
//! keeps its socket; the next request on that socket is served as if nothing
//! happened. Real sockets, a real hyper backend, the proxy's own connection
//! gauges. Assertions are on outcomes, never on timings.

use std::time::Duration;

use teal::router::ClientConnections;
use teal_proxy::ProxyOptions;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::eventually;
use crate::support::proxy::*;

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: app\r\n\r\n";

async fn started() -> (TestBackend, Harness) {
    started_with(ProxyOptions::default()).await
}

async fn started_with(opts: ProxyOptions) -> (TestBackend, Harness) {
    let app = TestBackend::start("app").await;
    let h = Harness::with(opts).await;
    h.route_to(app.addr).await;
    (app, h)
}

/// A connection that has served one request and is now parked.
async fn parked_connection(h: &Harness) -> TcpStream {
    let mut stream = TcpStream::connect(h.addr()).await.unwrap();
    stream.write_all(GET).await.unwrap();
    let reply = read_response(&mut stream).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        eventually(Duration::from_secs(5), async || parked(h) == 1).await,
        "not parked after 5 s idle: {:?}",
        h.proxy.client_connections()
    );
    stream
}

fn parked(h: &Harness) -> usize {
    h.proxy.client_connections().parked
}

/// Whether the proxy's client connections come to satisfy `check` (polled, 5 s at most).
async fn connections_reach(h: &Harness, check: impl Fn(ClientConnections) -> bool) -> bool {
    eventually(Duration::from_secs(5), async || {
        check(h.proxy.client_connections())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_parked_and_serves_its_next_request() {
    let (app, h) = started().await;
    let mut stream = parked_connection(&h).await;
    for _ in 0..3 {
        stream.write_all(GET).await.unwrap();
        let reply = read_response(&mut stream).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(
            !reply.to_ascii_lowercase().contains("connection: close"),
            "{reply}"
        );
        assert!(reply.ends_with("\r\n\r\napp"), "{reply}");
    }
    assert_eq!(
        h.proxy.client_connections(),
        ClientConnections {
            open: 1,
            parked: 0,
            malformed_requests: 0,
            access_log_dropped_lines: None,
        }
    );
    assert_eq!(app.hits(), 4);
    // And it parks again once idle.
    assert!(eventually(Duration::from_secs(5), async || parked(&h) == 1).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_arrives_in_pieces_across_a_park_is_served() {
    let (app, h) = started().await;
    let mut stream = TcpStream::connect(h.addr()).await.unwrap();
    stream.write_all(GET).await.unwrap();
    read_response(&mut stream).await;
    // Half a head, then a pause long enough for the connection to be parked
    // with those bytes already read by hyper; then the rest.
    stream
        .write_all(b"GET /second HTTP/1.1\r\nHo")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stream.write_all(b"st: app\r\n\r\n").await.unwrap();
    let reply = read_response(&mut stream).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(app.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upgrade_on_a_parked_connection_works() {
    let (_app, h) = started().await;
    let stream = parked_connection(&h).await;
    let (mut ws, response) = tokio_tungstenite::client_async("ws://app.test/ws", stream)
        .await
        .expect("websocket handshake on a parked connection");
    assert_eq!(response.status(), 101);
    assert_eq!(ws_exchange(&mut ws, "one").await, "app:one");
    assert_eq!(ws_exchange(&mut ws, "two").await, "app:two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_connection_closes_after_the_idle_timeout() {
    let opts = ProxyOptions {
        header_read_timeout: Duration::from_secs(3),
        ..ProxyOptions::default()
    };
    let (_app, h) = started_with(opts).await;
    let mut stream = parked_connection(&h).await;
    assert!(
        closed_by_peer(&mut stream).await,
        "a parked connection outlived the idle timeout"
    );
    assert!(connections_reach(&h, |c| c == ClientConnections::default()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_parked_connections_at_once() {
    let (_app, h) = started().await;
    let mut stream = parked_connection(&h).await;
    h.shutdown.cancel();
    // Well inside the grace: nothing waits for the parked connection.
    tokio::time::timeout(
        Duration::from_secs(5),
        h.proxy.wait_closed(Duration::from_secs(30)),
    )
    .await
    .expect("wait_closed returns without waiting out its grace");
    assert!(closed_by_peer(&mut stream).await);
}

/// HTTP clients speak first, so the listeners ask the kernel to hand over a
/// connection only once its first bytes are in (TCP_DEFER_ACCEPT): a
/// connection that has sent nothing costs the proxy nothing yet, not even a
/// task. Once it sends, it is served as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_taken_on_only_once_it_has_sent_something() {
    let (app, h) = started().await;
    let mut silent = TcpStream::connect(h.addr()).await.unwrap();
    // Without deferred accept the proxy would have taken it within
    // milliseconds; the kernel holds it for a second.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.proxy.client_connections(),
        ClientConnections {
            open: 0,
            parked: 0,
            malformed_requests: 0,
            access_log_dropped_lines: None,
        }
    );
    silent.write_all(GET).await.unwrap();
    let reply = read_response(&mut silent).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(h.proxy.client_connections().open, 1);
    assert_eq!(app.hits(), 1);
    drop(silent);
    assert!(connections_reach(&h, |c| c.open == 0).await);

    // One that stays silent past the deferral is handed over with nothing to
    // read, and served when its request comes.
    let mut slow = TcpStream::connect(h.addr()).await.unwrap();
    assert!(
        connections_reach(&h, |c| c.open == 1).await,
        "a silent connection was never handed over: {:?}",
        h.proxy.client_connections()
    );
    slow.write_all(GET).await.unwrap();
    let reply = read_response(&mut slow).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(app.hits(), 2);
}
