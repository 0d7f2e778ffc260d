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
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
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
    let response = conn
        .send_request(call_request(method, request))
        .await
        .map_err(|e| format!("request: {e}"))?;
    reply(response).await
}

/// The HTTP request of a call of `teal.Echo/METHOD` (either HTTP version).
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

/// What a load saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: u64,
    pub failed: u64,
    /// The first failures, said.
    pub errors: Vec<String>,
    pub versions: BTreeMap<String, u64>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.errors.extend(other.errors);
        self.errors.truncate(20);
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
        let stop = CancellationToken::new();
        let done = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let conn = connect(addr).await;
            for _ in 0..callers {
                let (mut conn, stop, done) = (conn.clone(), stop.clone(), Arc::clone(&done));
                tasks.push(tokio::spawn(async move {
                    let mut tally = Tally::default();
                    for _ in 0..MAX_CALLS_PER_CALLER {
                        if stop.is_cancelled() {
                            break;
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
