//! The demo app (`teal demo-app`) as a real process: boot delay, broken version,
//! `/slow`, websocket echo, and a graceful stop on SIGTERM.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

use crate::support::eventually;

/// Upper bound for any single wait in these tests; only reached when broken.
const PATIENCE: Duration = Duration::from_secs(20);

/// A running `teal demo-app`, killed when dropped.
struct DemoApp {
    child: Child,
    addr: SocketAddr,
}

impl DemoApp {
    /// Starts it on port 0 and reads the address from its first line of output.
    async fn start(version: &str, extra: &[&str]) -> DemoApp {
        let mut child = Command::new(env!("CARGO_BIN_EXE_teal"))
            .args(["demo-app", "--port", "0", "--app-version", version])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn teal demo-app");
        let stdout = child.stdout.take().unwrap();
        let mut first = String::new();
        timeout(PATIENCE, BufReader::new(stdout).read_line(&mut first))
            .await
            .expect("demo app prints its address")
            .unwrap();
        let addr = first
            .trim()
            .rsplit("http://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        DemoApp { child, addr }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id().unwrap() as i32)
    }
}

/// A keep-alive HTTP/1.1 connection.
async fn connect(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

async fn send(sender: &mut SendRequest<Empty<Bytes>>, path: &str) -> (u16, String) {
    let req = http::Request::get(path)
        .header(http::header::HOST, "demo")
        .body(Empty::new())
        .unwrap();
    let resp = timeout(PATIENCE, sender.send_request(req))
        .await
        .expect("answer in time")
        .expect("answer");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    send(&mut connect(addr).await, path).await
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
}

#[tokio::test]
async fn answers_503_while_loading_then_200_with_its_version() {
    let app = DemoApp::start("1.0.0", &["--boot-delay", "3s"]).await;
    let (status, body) = get(app.addr, "/").await;
    assert_eq!((status, body.as_str()), (503, "loading"));

    let mut answer = (0, String::new());
    eventually(Duration::from_secs(10), async || {
        answer = get(app.addr, "/").await;
        answer.0 != 503
    })
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let body = json(&answer.1);
    assert_eq!(body["app"], "uptimer");
    assert_eq!(body["version"], "1.0.0");
    assert_eq!(body["pid"], app.child.id().unwrap());
}

#[tokio::test]
async fn broken_version_answers_500_everywhere() {
    let app = DemoApp::start("broken-1.1.0", &[]).await;
    for path in ["/", "/health", "/slow?ms=10"] {
        assert_eq!(
            get(app.addr, path).await,
            (500, "Errors everywhere...".to_string())
        );
    }
}

#[tokio::test]
async fn slow_answers_after_the_delay_on_a_keep_alive_connection() {
    let app = DemoApp::start("1.0.0", &[]).await;
    let mut conn = connect(app.addr).await;
    let (status, body) = send(&mut conn, "/slow?ms=300").await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["version"], "1.0.0");
    // Same connection, next request.
    let (status, body) = send(&mut conn, "/anything").await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["version"], "1.0.0");
}

#[tokio::test]
async fn bytes_answers_exactly_n_bytes_capped_at_one_mib() {
    let app = DemoApp::start("1.0.0", &[]).await;
    let mut conn = connect(app.addr).await;
    for (asked, expected) in [(0, 0), (100, 100), (65536, 65536), (5 << 20, 1 << 20)] {
        let (status, body) = send(&mut conn, &format!("/bytes?n={asked}")).await;
        assert_eq!(status, 200);
        assert_eq!(body.len(), expected, "/bytes?n={asked}");
        assert!(body.bytes().all(|b| b == b'x'));
    }
}

#[tokio::test]
async fn websocket_echoes_with_the_version() {
    let app = DemoApp::start("2.0.0", &[]).await;
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let url = format!("ws://{}/ws", app.addr);
    let (mut ws, resp) = timeout(PATIENCE, tokio_tungstenite::client_async(url, stream))
        .await
        .expect("handshake in time")
        .expect("websocket handshake");
    assert_eq!(resp.status(), 101);
    for msg in ["hello", "again"] {
        ws.send(Message::text(msg)).await.unwrap();
        let reply = timeout(PATIENCE, ws.next())
            .await
            .expect("echo in time")
            .expect("open")
            .expect("message");
        assert_eq!(reply, Message::text(format!("2.0.0: {msg}")));
    }
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_and_exits_0() {
    let mut app = DemoApp::start("1.0.0", &[]).await;
    let mut conn = connect(app.addr).await;
    // A first answer proves the app serves this connection before the slow request.
    assert_eq!(send(&mut conn, "/").await.0, 200);
    let slow = tokio::spawn(async move { send(&mut conn, "/slow?ms=2000").await });
    // Let the app read the request; the answer takes far longer than this.
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill(app.pid(), Signal::SIGTERM).unwrap();

    let (status, body) = slow.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(json(&body)["version"], "1.0.0");
    let exit = timeout(PATIENCE, app.child.wait())
        .await
        .expect("exits after the request")
        .unwrap();
    assert_eq!(exit.code(), Some(0));
    // And it no longer accepts connections.
    assert!(TcpStream::connect(app.addr).await.is_err());
}
