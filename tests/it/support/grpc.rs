//! gRPC by hand for the gRPC tests: the grpcio test app (`tests/apps/grpc_app.py`)
//! as a service, hyper's HTTP/2 client (prior knowledge) speaking gRPC's
//! 5-byte frames, and a load of unary calls on a few connections that counts
//! every failed call (not HTTP 200, no or non-zero `grpc-status`, a broken
//! stream) and never retries.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use teal::spec::{Protocol, RuntimeSpec, ServiceSpec};
use tokio_util::sync::CancellationToken;

use super::{demo_service, require};

/// The grpcio app.
pub const APP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/apps/grpc_app.py");

/// Python's grpcio and grpcio-health-checking are installed (`scripts/test`
/// installs them); with CI=true a missing one fails the test.
pub fn require_grpcio() -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", "import grpc, grpc_health"])
        .status()
        .is_ok_and(|s| s.success());
    require("python3 with grpcio and grpcio-health-checking", found)
}

/// The grpcio app as an h2c service with the standard gRPC health check.
pub fn grpc_service(name: &str, dir: &Path) -> ServiceSpec {
    let mut spec = demo_service(name, dir, 1);
    spec.runtime = RuntimeSpec::Process {
        command: ["python3", APP, "--port", "{port}", "--version", "{version}"]
            .map(String::from)
            .to_vec(),
    };
    spec.protocol = Protocol::H2c;
    spec.health.grpc = Some(String::new());
    spec.health.h2c = true;
    spec.health.interval = Duration::from_millis(100);
    spec.health.deadline = Duration::from_secs(30);
    spec.drain.timeout = Duration::from_secs(15);
    spec
}

/// One HTTP/2 connection to the proxy.
pub type Conn = SendRequest<Full<Bytes>>;

pub async fn connect(addr: SocketAddr) -> Conn {
    Dial::Plain(addr).connect().await
}

/// How a gRPC client reaches the proxy: HTTP/2 with prior knowledge on a
/// plain listener, or over TLS with `h2` chosen by ALPN.
#[derive(Clone)]
pub enum Dial {
    Plain(SocketAddr),
    Tls {
        addr: SocketAddr,
        name: String,
        connector: tokio_rustls::TlsConnector,
    },
}

impl Dial {
    /// A new HTTP/2 connection.
    pub async fn connect(&self) -> Conn {
        match self {
            Dial::Plain(addr) => {
                let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                handshake(stream).await
            }
            Dial::Tls {
                addr,
                name,
                connector,
            } => {
                let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                let server = rustls::pki_types::ServerName::try_from(name.clone()).unwrap();
                let tls = connector.connect(server, stream).await.expect("TLS");
                assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
                handshake(tls).await
            }
        }
    }
}

async fn handshake<S>(stream: S) -> Conn
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    sender
}

/// One call of `teal.Echo/METHOD`: its messages when it ended with
/// grpc-status 0, else why it failed.
pub async fn call(conn: &mut Conn, method: &str, request: &[u8]) -> Result<Vec<Bytes>, String> {
    conn.ready().await.map_err(|e| format!("not ready: {e}"))?;
    // HTTP/2 names the host in `:authority` alone, as gRPC clients do (nginx
    // refuses a request that also has a Host header).
    let mut request = call_request(method, request);
    request.headers_mut().remove(http::header::HOST);
    let response = conn
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e:?}"))?;
    reply(response).await
}

/// The HTTP request of a call of `teal.Echo/METHOD`, with the Host header
/// an HTTP/1.1 client sends.
pub fn call_request(method: &str, request: &[u8]) -> http::Request<Full<Bytes>> {
    let mut framed = BytesMut::new();
    framed.put_u8(0);
    framed.put_u32(request.len() as u32);
    framed.put_slice(request);
    http::Request::post(format!("http://grpc.test/teal.Echo/{method}"))
        .header("host", "grpc.test")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(framed.freeze()))
        .expect("request")
}

/// `calls` unary `Version` calls from an HTTP/1.1 client on `stream` (one
/// keep-alive connection), each answered over HTTP/1.1 and OK: the version
/// each answered with.
pub async fn http1_versions<S>(stream: S, calls: usize) -> Vec<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn);
    let mut versions = Vec::new();
    for _ in 0..calls {
        sender.ready().await.expect("ready");
        let response = sender
            .send_request(call_request("Version", b""))
            .await
            .expect("an answer");
        assert_eq!(response.version(), http::Version::HTTP_11);
        let messages = reply(response).await.expect("an OK call over HTTP/1.1");
        versions.push(String::from_utf8_lossy(&messages[0]).into_owned());
    }
    versions
}

/// A call's messages when its answer is HTTP 200 ending with grpc-status 0
/// (in the trailers, or in the head of a trailers-only answer).
pub async fn reply(response: http::Response<Incoming>) -> Result<Vec<Bytes>, String> {
    if response.status() != 200 {
        return Err(format!("HTTP {}", response.status()));
    }
    let (head, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| format!("body: {e}"))?;
    let trailers = body.trailers().cloned().unwrap_or_default();
    let status = trailers
        .get("grpc-status")
        .or_else(|| head.headers.get("grpc-status"))
        .map(|v| v.to_str().unwrap_or("?").to_string());
    match status.as_deref() {
        Some("0") => {}
        Some(code) => return Err(format!("grpc-status {code}")),
        None => return Err("no grpc-status".into()),
    }
    let mut bytes = body.to_bytes();
    let mut messages = Vec::new();
    while bytes.len() >= 5 {
        bytes.advance(1);
        let len = bytes.get_u32() as usize;
        if bytes.len() < len {
            return Err("a message cut short".into());
        }
        messages.push(bytes.split_to(len));
    }
    Ok(messages)
}

/// A call's error that is its connection ending under it (no HTTP answer,
/// no grpc-status): a stream the server's GOAWAY refused, a request hyper
/// had not sent yet when the connection closed (or that found it closed),
/// or the connection cut.
fn connection_dropped(error: &str) -> bool {
    let refused = error.contains("GoAway(") && error.contains("NO_ERROR");
    // hyper's `Canceled`: the request was still queued in the client when its
    // connection closed ("connection closed") or turned out closed ("connection
    // was not ready"); never written.
    let unsent = error.contains("Error(Canceled,") || error.starts_with("not ready");
    let cut = error.contains("Error(Io,");
    refused || unsent || cut
}

/// What a load saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: u64,
    pub failed: u64,
    /// The first failures, said.
    pub errors: Vec<String>,
    pub versions: BTreeMap<String, u64>,
    /// Of the failed calls, those that ended with their connection, with no
    /// answer: refused by the proxy's GOAWAY (never processed), still queued
    /// in the client when the connection closed, or cut by a reset.
    pub connection_dropped: u64,
    /// Connections the proxy closed between calls (after a GOAWAY: no call
    /// was sent on them), replaced by new ones.
    pub reconnects: u64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.errors.extend(other.errors);
        self.errors.truncate(20);
        self.reconnects += other.reconnects;
        self.connection_dropped += other.connection_dropped;
        for (version, n) in other.versions {
            *self.versions.entry(version).or_default() += n;
        }
    }
}

/// Unary `Version` calls from `callers` tasks on each of `connections`
/// HTTP/2 connections, until stopped (or a bound of calls per caller).
pub struct GrpcLoad {
    stop: CancellationToken,
    done: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
}

const MAX_CALLS_PER_CALLER: u64 = 200_000;

impl GrpcLoad {
    pub async fn start(addr: SocketAddr, connections: usize, callers: usize) -> GrpcLoad {
        GrpcLoad::dial(Dial::Plain(addr), connections, callers).await
    }

    /// The load through `dial`. A caller whose connection was closed between
    /// calls (the proxy's GOAWAY) opens a new one; a call that was sent and
    /// failed is counted, never sent again.
    pub async fn dial(dial: Dial, connections: usize, callers: usize) -> GrpcLoad {
        let stop = CancellationToken::new();
        let done = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let conn = dial.connect().await;
            for _ in 0..callers {
                let (mut conn, stop, done) = (conn.clone(), stop.clone(), Arc::clone(&done));
                let dial = dial.clone();
                tasks.push(tokio::spawn(async move {
                    let mut tally = Tally::default();
                    for _ in 0..MAX_CALLS_PER_CALLER {
                        if stop.is_cancelled() {
                            break;
                        }
                        if conn.ready().await.is_err() {
                            conn = dial.connect().await;
                            tally.reconnects += 1;
                        }
                        match call(&mut conn, "Version", b"").await {
                            Ok(messages) if messages.len() == 1 => {
                                tally.ok += 1;
                                let version = String::from_utf8_lossy(&messages[0]).into_owned();
                                *tally.versions.entry(version).or_default() += 1;
                            }
                            Ok(messages) => {
                                tally.failed += 1;
                                tally.errors.push(format!("{} messages", messages.len()));
                            }
                            Err(error) => {
                                tally.failed += 1;
                                if connection_dropped(&error) {
                                    tally.connection_dropped += 1;
                                }
                                if tally.errors.len() < 20 {
                                    tally.errors.push(error);
                                }
                            }
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    tally
                }));
            }
        }
        GrpcLoad { stop, done, tasks }
    }

    /// Waits until `more` further calls ended (bounded by `limit`).
    pub async fn finish_more(&self, more: u64, limit: Duration) {
        let target = self.done.load(Ordering::Relaxed) + more;
        let started = Instant::now();
        while self.done.load(Ordering::Relaxed) < target && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the callers and adds up what they saw (calls in flight finish).
    pub async fn stop(self) -> Tally {
        self.stop.cancel();
        let mut tally = Tally::default();
        for task in self.tasks {
            tally.merge(task.await.expect("caller"));
        }
        tally
    }
}

/// `spec` (v1 live) deployed as v2 ... v`deploys + 1` under `load`, each
/// live, then rolled back, with calls ending between the steps: what the
/// load saw.
pub async fn deploys_and_a_rollback(
    d: &super::TestDaemon,
    spec: &ServiceSpec,
    load: GrpcLoad,
    deploys: usize,
) -> Tally {
    load.finish_more(100, Duration::from_secs(30)).await;
    for n in 2..=deploys + 1 {
        d.deploy(spec, &format!("v{n}")).await.assert_live();
        load.finish_more(30, Duration::from_secs(30)).await;
    }
    d.rollback(&spec.name).await.assert_live();
    load.finish_more(100, Duration::from_secs(30)).await;
    let tally = load.stop().await;
    eprintln!("{tally:?}");
    tally
}
