//! Handing the builtin proxy over to a successor proxy, in one process: the
//! successor takes the listening sockets (the same sockets, with their accept
//! queues) and then every HTTP/1.1 client connection at its next request
//! boundary, while load runs. No request fails, no keep-alive connection is
//! closed under its client (the load client counts its reconnections), and a
//! slow request and a websocket in progress finish on the old proxy.
//!
//! nginx's binary upgrade, HAProxy's reload and Envoy's hot restart hand over
//! listening sockets only: their old processes close idle keep-alive
//! connections, and a client that sends on one at that moment gets an error.

use std::sync::Arc;
use std::time::Duration;

use crate::support::eventually;
use crate::support::proxy::*;
use teal::load::{Load, LoadSpec};
use teal::slot::Slot;
use teal_proxy::{HandedConn, ListenerName, Proxy, ProxyOptions};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A successor on the predecessor's sockets, with the same routes, serving
/// what is handed to it.
async fn successor(
    old: &Harness,
    to: std::net::SocketAddr,
) -> (Harness, mpsc::UnboundedSender<HandedConn>) {
    let sockets = old
        .proxy
        .listening_sockets()
        .expect("duplicate the listening sockets");
    assert_eq!(sockets.len(), 1, "production only");
    assert_eq!(sockets[0].name, ListenerName::Production);
    let shutdown = CancellationToken::new();
    let proxy = Proxy::bind_inherited(
        old.addr(),
        ProxyOptions::default(),
        shutdown.clone(),
        sockets,
    )
    .await
    .expect("bind on the inherited sockets");
    let new = Harness { proxy, shutdown };
    assert_eq!(new.addr(), old.addr(), "the same listening address");
    new.route_to(to).await;
    new.proxy.start_accepting();
    let (give, mut take) = mpsc::unbounded_channel::<HandedConn>();
    let serving = Arc::clone(&new.proxy);
    tokio::spawn(async move {
        while let Some(conn) = take.recv().await {
            serving.serve_handed(conn);
        }
    });
    (new, give)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_under_load_loses_no_request_and_no_connection() {
    let app = TestBackend::start("app").await;
    let old = Harness::start().await;
    old.route_to(app.addr).await;

    let mut spec = LoadSpec::new(old.addr());
    spec.max_duration = Duration::from_secs(60);
    spec.request_timeout = Duration::from_secs(10);
    let load = Load::start(spec.clone());

    // A slow request on its own keep-alive connection, begun before the hand-over.
    let mut slow_conn = Conn::open(old.addr()).await.expect("connect");
    let slow = tokio::spawn(async move {
        let reply = slow_conn.get("app", "/slow?ms=1500").await;
        (reply, slow_conn)
    });
    let started = eventually(Duration::from_secs(10), async || {
        old.proxy.stats("web", Slot::Blue).in_flight > 0
    })
    .await;
    assert!(started, "the slow request reached the app");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (new, give) = successor(&old, app.addr).await;
    old.proxy.hand_over(give);
    let (reply, mut slow_conn) = slow.await.expect("slow request task");
    let reply = reply.expect("the slow request finishes on the old proxy");
    assert_eq!((reply.status, reply.body.as_str()), (200, "app"));
    assert_eq!(app.slow_done(), 1);
    // The same connection, now the successor's.
    let next = slow_conn
        .get("app", "/")
        .await
        .expect("the next request on it");
    assert_eq!(next.status, 200);
    old.shutdown.cancel();
    old.proxy.wait_closed(Duration::from_secs(10)).await;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = load.stop().await;
    assert_eq!(report.failed(), 0, "{report:?}");
    assert!(report.ok > 100, "{report:?}");
    assert_eq!(
        report.keepalive_connects, spec.keepalive_connections as u64,
        "every keep-alive client kept its connection: {report:?}"
    );
    let handed = old.proxy.connections_handed_over();
    assert!(
        handed > spec.keepalive_connections as u64,
        "the keep-alive connections and the slow one moved: {handed}"
    );
    assert!(new.proxy.stats("web", Slot::Blue).requests > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_stays_on_the_old_proxy_until_it_closes() {
    let app = TestBackend::start("app").await;
    let old = Harness::start().await;
    old.route_to(app.addr).await;
    let stream = TcpStream::connect(old.addr()).await.unwrap();
    let (mut ws, response) = tokio_tungstenite::client_async("ws://app.test/ws", stream)
        .await
        .expect("websocket handshake through the proxy");
    assert_eq!(response.status(), 101);
    assert_eq!(ws_exchange(&mut ws, "before").await, "app:before");

    let (new, give) = successor(&old, app.addr).await;
    old.proxy.hand_over(give);
    assert_eq!(ws_exchange(&mut ws, "during").await, "app:during");
    let reply = get_fresh(new.addr(), "app", "/")
        .await
        .expect("a new connection");
    assert_eq!(reply.status, 200);
    assert_eq!(ws_exchange(&mut ws, "after").await, "app:after");
    drop(ws);
    old.shutdown.cancel();
    old.proxy.wait_closed(Duration::from_secs(10)).await;
}

/// A connection hyper serves (the lean path handed it over: a Connection
/// token it does not handle) moves to the successor too, once idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_on_hypers_path_moves_too() {
    let app = TestBackend::start("app").await;
    let old = Harness::start().await;
    old.route_to(app.addr).await;
    let mut conn = Conn::open(old.addr()).await.expect("connect");
    let unusual = http::Request::get("/")
        .header("host", "app")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "1")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let reply = conn
        .send(unusual)
        .await
        .expect("a request for hyper's path");
    assert_eq!(reply.status, 200);
    assert_eq!(old.proxy.connections_handed_to_hyper(), 1);

    let (new, give) = successor(&old, app.addr).await;
    old.proxy.hand_over(give);
    let moved = eventually(Duration::from_secs(10), async || {
        old.proxy.connections_handed_over() == 1
    })
    .await;
    assert!(moved, "hyper's idle connection moved at its next check");
    let reply = conn.get("app", "/").await.expect("the next request");
    assert_eq!(reply.status, 200);
    assert_eq!(new.proxy.stats("web", Slot::Blue).requests, 1);
    old.shutdown.cancel();
    old.proxy.wait_closed(Duration::from_secs(10)).await;
}

/// An h2c connection with a stream in progress during a hand-over: it gets
/// GOAWAY (h2c connections do not move), the stream finishes on the old
/// proxy with all its body, and the client's next connection is served by
/// the successor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_stream_in_progress_finishes_and_the_connection_gets_goaway() {
    use crate::support::proxy::h2::{self, H2Raw};
    let drip = DripBackend::start().await;
    let old = Harness::start().await;
    old.route_to(drip.addr).await;
    let mut client = H2Raw::connect(old.addr()).await;
    client.server_settings().await;
    let id = client.get("drip.test", "/drip?chunks=10&ms=300").await;
    let started = eventually(Duration::from_secs(10), async || drip.started() == 1).await;
    assert!(started, "the request reached the app");

    let (new, give) = successor(&old, drip.addr).await;
    old.proxy.hand_over(give);
    let (frames, closed) = client.frames_until_closed(EXCHANGE).await;
    assert!(closed, "the connection closes after its stream");
    let goaway = frames.iter().position(|f| f.kind == h2::GOAWAY);
    let goaway = goaway.expect("a GOAWAY");
    assert_eq!(frames[goaway].error_code(), Some(h2::NO_ERROR));
    let streams = h2::outcomes(&frames);
    assert!(streams[&id].ended, "{frames:?}");
    assert_eq!(streams[&id].body, drip_body(10).as_bytes());
    assert_eq!(old.proxy.connections_handed_over(), 0);

    let mut next = H2Raw::connect(new.addr()).await;
    next.server_settings().await;
    let id = next.get("drip.test", "/drip?chunks=1&ms=10").await;
    assert!(next.completes(id).await, "the successor answers");
    assert_eq!(new.proxy.stats("web", Slot::Blue).requests, 1);
    old.shutdown.cancel();
    old.proxy.wait_closed(Duration::from_secs(10)).await;
}
