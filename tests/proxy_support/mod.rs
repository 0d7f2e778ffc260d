//! Helpers for `tests/proxy.rs`: small real backends (hyper HTTP/1.1 servers on
//! 127.0.0.1), real clients, and spec/backend builders. No mocks.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use teal::proxy::{Proxy, ProxyOptions};
use teal::router::Backend;
use teal::slot::Slot;
use teal::spec::{DrainSpec, HealthSpec, RuntimeSpec, ServiceSpec};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_util::sync::CancellationToken;

/// Upper bound for any single client exchange in these tests.
pub const EXCHANGE: Duration = Duration::from_secs(30);

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A minimal service spec; health probes every 100 ms.
pub fn spec(name: &str, hosts: &[&str], preview: Option<SocketAddr>) -> ServiceSpec {
    ServiceSpec {
        name: name.into(),
        runtime: RuntimeSpec::Process { command: vec![] },
        instances: 1,
        version: None,
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        preview,
        env: Default::default(),
        workdir: ".".into(),
        health: HealthSpec {
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(2),
            ..HealthSpec::default()
        },
        drain: DrainSpec::default(),
    }
}

pub fn backend(slot: Slot, addrs: &[SocketAddr]) -> Option<Backend> {
    Some(Backend {
        slot,
        version: "test".into(),
        addrs: addrs.to_vec(),
    })
}

/// A proxy on 127.0.0.1:0, shut down when dropped.
pub struct Harness {
    pub proxy: Arc<Proxy>,
    pub shutdown: CancellationToken,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::with(ProxyOptions::default()).await
    }

    pub async fn with(opts: ProxyOptions) -> Harness {
        let shutdown = CancellationToken::new();
        let proxy = Proxy::bind_with(loopback(), opts, shutdown.clone())
            .await
            .expect("bind proxy");
        Harness { proxy, shutdown }
    }

    pub fn addr(&self) -> SocketAddr {
        use teal::router::Router;
        self.proxy.listen_addrs()[0]
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A test app: answers its name on any path, plus a few special paths:
/// `/headers` (echoes the request head, answers with hop-by-hop headers),
/// `/slow?ms=N`, `/status/500`, and `/ws` (websocket echo as "name:text").
pub struct TestBackend {
    pub addr: SocketAddr,
    pub name: String,
    hits: Arc<AtomicUsize>,
    /// Slow requests that finished (counted just before answering).
    slow_done: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl TestBackend {
    pub async fn start(name: &str) -> TestBackend {
        let listener = TcpListener::bind(loopback()).await.expect("bind backend");
        TestBackend::serve(listener, name)
    }

    pub fn serve(listener: TcpListener, name: &str) -> TestBackend {
        let addr = listener.local_addr().expect("backend addr");
        let backend = TestBackend {
            addr,
            name: name.to_string(),
            hits: Arc::default(),
            slow_done: Arc::default(),
            stop: CancellationToken::new(),
        };
        let state = State {
            name: Arc::from(name),
            hits: backend.hits.clone(),
            slow_done: backend.slow_done.clone(),
        };
        let stop = backend.stop.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => continue,
                    },
                };
                let state = state.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(state.clone(), req));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.cancelled() => {}
                    }
                });
            }
        });
        backend
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn slow_done(&self) -> usize {
        self.slow_done.load(Ordering::SeqCst)
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[derive(Clone)]
struct State {
    name: Arc<str>,
    hits: Arc<AtomicUsize>,
    slow_done: Arc<AtomicUsize>,
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

async fn answer(
    state: State,
    mut req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let name = state.name.to_string();
    let path = req.uri().path().to_string();
    let response = match path.as_str() {
        "/headers" => {
            let mut body = format!("version: {:?}\n", req.version());
            for (key, value) in req.headers() {
                body.push_str(&format!("{key}: {}\n", value.to_str().unwrap_or("?")));
            }
            let mut response = text(StatusCode::OK, body);
            let headers = response.headers_mut();
            headers.insert("connection", "x-resp-hop".parse().unwrap());
            headers.insert("x-resp-hop", "1".parse().unwrap());
            headers.insert("keep-alive", "timeout=5".parse().unwrap());
            headers.insert("x-kept", "yes".parse().unwrap());
            response
        }
        "/slow" => {
            let ms = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("ms="))
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            state.slow_done.fetch_add(1, Ordering::SeqCst);
            text(StatusCode::OK, name)
        }
        "/status/500" => text(StatusCode::INTERNAL_SERVER_ERROR, name),
        "/echo" => {
            let body = req.into_body().collect().await.map(|c| c.to_bytes());
            let body = body.unwrap_or_default();
            text(
                StatusCode::OK,
                format!("{name}:{}", String::from_utf8_lossy(&body)),
            )
        }
        "/ws" => websocket(name, &mut req),
        _ => text(StatusCode::OK, name),
    };
    Ok(response)
}

fn websocket(name: String, req: &mut Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(key) = req.headers().get("sec-websocket-key") else {
        return text(StatusCode::BAD_REQUEST, "no key".into());
    };
    let accept = derive_accept_key(key.as_bytes());
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(message)) = ws.next().await {
            match message {
                Message::Text(t) => {
                    let echo = Message::text(format!("{name}:{}", t.as_str()));
                    if ws.send(echo).await.is_err() {
                        return;
                    }
                }
                Message::Close(_) => return,
                _ => {}
            }
        }
    });
    let mut response = text(StatusCode::SWITCHING_PROTOCOLS, String::new());
    let headers = response.headers_mut();
    headers.insert("upgrade", "websocket".parse().unwrap());
    headers.insert("connection", "Upgrade".parse().unwrap());
    headers.insert("sec-websocket-accept", accept.parse().unwrap());
    response
}

/// What a client got back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

/// One HTTP/1.1 keep-alive client connection.
pub struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Conn, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn.with_upgrades());
        Ok(Conn { sender })
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    pub async fn get(&mut self, host: &str, path: &str) -> Result<Reply, String> {
        let req = Request::get(path)
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        self.send(req).await
    }

    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Reply, String> {
        let exchange = async {
            self.sender.ready().await.map_err(|e| e.to_string())?;
            let response = self
                .sender
                .send_request(req)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok(Reply {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        };
        tokio::time::timeout(EXCHANGE, exchange)
            .await
            .map_err(|_| "timed out".to_string())?
    }
}

/// One request on a fresh connection.
pub async fn get_fresh(addr: SocketAddr, host: &str, path: &str) -> Result<Reply, String> {
    Conn::open(addr).await?.get(host, path).await
}

/// Polls `check` every 50 ms until it is true, at most `tries` times.
pub async fn eventually(tries: usize, mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..tries {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A raw HTTP/1.1 app that answers the first request of each connection and
/// then, without saying `Connection: close`, drops the connection as soon as a
/// second request arrives: a keep-alive race on every reused connection.
pub struct OneShotBackend {
    pub addr: SocketAddr,
    posts: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl OneShotBackend {
    pub async fn start() -> OneShotBackend {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind(loopback()).await.expect("bind backend");
        let backend = OneShotBackend {
            addr: listener.local_addr().expect("addr"),
            posts: Arc::default(),
            stop: CancellationToken::new(),
        };
        let (posts, stop) = (backend.posts.clone(), backend.stop.clone());
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => continue,
                    },
                };
                let posts = posts.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    for round in 0..2 {
                        buf.clear();
                        let mut chunk = [0u8; 4096];
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        if buf.starts_with(b"POST") {
                            posts.fetch_add(1, Ordering::SeqCst);
                        }
                        if round == 0 {
                            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\none-shot";
                            if stream.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                    // Second request: hang up without answering.
                });
            }
        });
        backend
    }

    pub fn posts(&self) -> usize {
        self.posts.load(Ordering::SeqCst)
    }
}

impl Drop for OneShotBackend {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
