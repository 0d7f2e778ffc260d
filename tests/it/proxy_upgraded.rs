//! Upgraded connections (websockets, other `101` protocols) at a drain: they
//! stay on their slot across the switch and until the drain's deadline, then
//! the proxy closes them: a websocket gets a close frame with code 1001
//! "going away" on both sides, put between two frames; any other upgraded
//! connection has its sockets closed. (kamal-proxy cuts websockets the moment
//! a drain starts; nginx's old workers keep them until
//! `worker_shutdown_timeout`, then close the sockets without a close frame.)
//! Real hyper and tungstenite backends, real and raw clients on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use teal::router::Router;
use teal::slot::Slot;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::eventually;
use crate::support::proxy::*;

const DRAIN: Duration = Duration::from_millis(400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_stays_across_the_switch_and_gets_1001_at_the_drain_deadline() {
    let blue = TestBackend::start("blue").await;
    let green = TestBackend::start("green").await;
    let h = Harness::start().await;
    let web = spec("web", &[], None);
    h.proxy
        .set_routes(&web, backend(Slot::Blue, &[blue.addr]), None)
        .await
        .unwrap();
    let stream = TcpStream::connect(h.addr()).await.unwrap();
    let (mut ws, response) = tokio_tungstenite::client_async("ws://app.test/ws", stream)
        .await
        .expect("websocket handshake through the proxy");
    assert_eq!(response.status(), 101);
    assert_eq!(ws_exchange(&mut ws, "one").await, "blue:one");

    h.proxy
        .set_routes(&web, backend(Slot::Green, &[green.addr]), None)
        .await
        .unwrap();
    assert_eq!(get_fresh(h.addr(), "app", "/").await.unwrap().body, "green");
    // Not cut by the switch: it stays on blue.
    assert_eq!(ws_exchange(&mut ws, "two").await, "blue:two");

    let started = Instant::now();
    let proxy = h.proxy.clone();
    let drain = tokio::spawn(async move { proxy.drain("web", Slot::Blue, DRAIN).await });
    // The client reads (and so answers the close) while the drain runs.
    let got = tokio::time::timeout(EXCHANGE, ws.next()).await.unwrap();
    let closed_after = started.elapsed();
    let Some(Ok(Message::Close(Some(frame)))) = got else {
        panic!("a close frame, got {got:?}");
    };
    assert_eq!(frame.code, CloseCode::Away);
    assert_eq!(frame.reason.as_str(), "going away");
    assert!(
        closed_after >= DRAIN,
        "not before the deadline: {closed_after:?}"
    );
    let report = drain.await.unwrap();
    assert_eq!(
        (report.remaining, report.timed_out, report.upgraded_closed),
        (1, true, 1),
        "{report:?}"
    );
    assert!(
        eventually(Duration::from_secs(10), async || blue.ws_closes()
            == vec![Some(1001)])
        .await,
        "the app got the close frame: {:?}",
        blue.ws_closes()
    );
    // The tunnel is gone: nothing left to drain.
    let report = h
        .proxy
        .drain("web", Slot::Blue, Duration::from_secs(10))
        .await;
    assert_eq!(
        (report.remaining, report.timed_out),
        (0, false),
        "{report:?}"
    );
    assert_eq!(green.ws_closes(), Vec::<Option<u16>>::new());
}

/// A masked client frame of `payload` (text), as RFC 6455 wants them.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xFA, 0x21, 0x3D];
    assert!(payload.len() < 126);
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// A websocket handshake by hand through the proxy; returns the socket after
/// the 101 head.
async fn raw_websocket(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    stream
}

/// Reads byte by byte up to the end of a head (so nothing after it is taken).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(EXCHANGE, stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            n,
            1,
            "closed inside a head: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A client frame that is half sent when the deadline comes is finished
/// first: the app gets it whole, then the close frame (tungstenite would
/// fail on a frame cut by another and record no close). The client gets the
/// close frame, unmasked, as soon as the app's direction is at a boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_close_frame_waits_for_the_frame_being_relayed() {
    let blue = TestBackend::start("blue").await;
    let h = Harness::start().await;
    h.route_to(blue.addr).await;
    let mut ws = raw_websocket(h.addr()).await;
    let frame = client_frame(0x1, b"hello, whole frame");
    ws.write_all(&frame[..9]).await.unwrap();

    let proxy = h.proxy.clone();
    let started = Instant::now();
    let drain = tokio::spawn(async move { proxy.drain("web", Slot::Blue, DRAIN).await });
    // The proxy's close to the client: code 1001, unmasked.
    let mut close = [0u8; 14];
    tokio::time::timeout(EXCHANGE, ws.read_exact(&mut close))
        .await
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= DRAIN, "{:?}", started.elapsed());
    let mut expected = vec![0x88, 12, 0x03, 0xE9];
    expected.extend_from_slice(b"going away");
    assert_eq!(close.to_vec(), expected);
    // The rest of the frame, within the proxy's wait for the boundary.
    ws.write_all(&frame[9..]).await.unwrap();
    ws.write_all(&client_frame(0x8, &1001u16.to_be_bytes()))
        .await
        .unwrap();
    assert!(closed_by_peer(&mut ws).await, "the proxy closes the socket");
    let report = drain.await.unwrap();
    assert_eq!(report.upgraded_closed, 1, "{report:?}");
    assert!(
        eventually(Duration::from_secs(10), async || blue.ws_closes()
            == vec![Some(1001)])
        .await,
        "the app got the frame whole, then the close: {:?}",
        blue.ws_closes()
    );
}

/// An app that switches to a protocol of its own (`Upgrade: x-echo`) and
/// echoes bytes; it notes when the proxy closed its side.
struct EchoProtocolApp {
    addr: std::net::SocketAddr,
    saw_end: Arc<AtomicBool>,
}

impl EchoProtocolApp {
    async fn start() -> EchoProtocolApp {
        let listener = TcpListener::bind(loopback()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let saw_end = Arc::new(AtomicBool::new(false));
        let end = saw_end.clone();
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            read_head(&mut stream).await;
            let head = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x-echo\r\n\r\n";
            stream.write_all(head).await.unwrap();
            let mut buf = [0u8; 1024];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            end.store(true, Ordering::SeqCst);
        });
        EchoProtocolApp { addr, saw_end }
    }
}

/// An upgraded connection that is not a websocket cannot be told in its
/// protocol: at the deadline both its sockets are closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_that_is_not_a_websocket_is_closed_at_the_deadline() {
    let app = EchoProtocolApp::start().await;
    let h = Harness::start().await;
    h.route_to(app.addr).await;
    let mut stream = TcpStream::connect(h.addr()).await.unwrap();
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: x-echo\r\n\r\n",
        )
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    stream.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    stream.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");

    let started = Instant::now();
    let report = h.proxy.drain("web", Slot::Blue, DRAIN).await;
    assert_eq!(
        (report.remaining, report.upgraded_closed),
        (1, 1),
        "{report:?}"
    );
    let mut rest = Vec::new();
    let read = tokio::time::timeout(EXCHANGE, stream.read_to_end(&mut rest)).await;
    assert!(started.elapsed() >= DRAIN);
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "closed, nothing more: {read:?} {rest:?}"
    );
    assert!(
        eventually(Duration::from_secs(10), async || app
            .saw_end
            .load(Ordering::SeqCst))
        .await,
        "the app's socket was closed"
    );
}
