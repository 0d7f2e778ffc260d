//! The demo app, "Uptimer": 503 while loading, then 200 with JSON naming
//! its version and instance. Run as `teal demo-app` (a hidden subcommand).
//!
//! It is the backend of `teal demo`, of the tests and of the benchmarks, so it stays
//! small: one precomputed JSON body, HTTP/1.1 with keep-alive, no logging per
//! request unless asked (`log_requests`: a line per request on stdout, as real
//! apps write, so a test sees when that output has nowhere to go). Paths:
//!
//! - any path: the JSON body (`{"app":"uptimer","version":..,"slot":..,"instance":..,"pid":..}`);
//! - `/slow?ms=N`: the same after sleeping N ms (at most 60 s), for drain tests;
//! - `/bytes?n=N`: N bytes of payload (at most 1 MiB), for large-response benchmarks;
//! - `/upload`: reads the request body to its end and answers how many bytes came;
//! - `/request-id`: the request's `x-request-id` as it arrived (empty if none);
//! - `/ws` with a websocket upgrade: echoes text messages as `"<version>: <msg>"`
//!   (the message `pid` gets `"<version>: pid <pid>"`: which instance holds it);
//!   a close frame from the other side is said on stdout
//!   (`websocket closed by the peer: 1001 going away`), as apps log it.
//!
//! A version starting with `broken` answers 500 `Errors everywhere...` everywhere
//! (the broken 1.1.0 of the walk-through). A version starting with `flaky` passes its health
//! check but fails real traffic: `/healthz` always answers 200, and a share of
//! every other request gets 500 `Flaky...`: `flakyN-...` fails N% (1 to 100),
//! plain `flaky-...` 25%, spread evenly (request i fails when ⌊(i+1)·N/100⌋ moves).
//! This module does not handle signals: the caller maps them to the `shutdown` token.

use std::convert::Infallible;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Longest `/slow` sleep, so a typo cannot hold a connection for hours.
const SLOW_CAP: Duration = Duration::from_secs(60);

/// The path a `flaky` version keeps answering 200 on: what its health check asks.
pub const HEALTHZ: &str = "/healthz";

/// Share of requests a plain `flaky-...` version fails, in percent.
const FLAKY_DEFAULT_PERCENT: u64 = 25;

/// Idle keep-alive connections are closed after this long. The proxy's upstream
/// pool must keep its idle timeout below it (see DESIGN.md, upstream robustness).
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// How one demo-app process behaves.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Address to listen on: loopback for local processes, `0.0.0.0` inside a
    /// container (where the engine forwards the published port to it).
    pub bind: IpAddr,
    pub port: u16,
    pub version: String,
    /// Instance label reported in answers (from `TEAL_INSTANCE`).
    pub instance: String,
    /// Slot label reported in answers (from `TEAL_SLOT`).
    pub slot: String,
    /// How long it answers 503 "loading" after start.
    pub boot_delay: Duration,
    /// Reported as `"greeting"` when set (from `GREETING`), so tests can see that a
    /// service's `env` reached the instance.
    pub greeting: Option<String>,
    /// Print one line per request on stdout. A write that fails (a broken pipe)
    /// fails the request.
    pub log_requests: bool,
}

/// What every request handler reads; built once at start.
struct App {
    version: String,
    broken: bool,
    /// Percent of non-health requests answered 500 (a `flaky` version), else 0.
    flaky_percent: u64,
    /// Non-health requests so far, for the even spread of flaky failures.
    requests: std::sync::atomic::AtomicU64,
    /// Until then every answer is 503 "loading".
    ready_at: Instant,
    /// The 200 body, precomputed: answering is a refcount bump.
    body: Bytes,
    log_requests: bool,
}

type Body = Full<Bytes>;

/// Listen queue length. A proxy that opens many connections at once (a burst
/// of clients, or its idle connections having expired) must not find the
/// queue full: a dropped SYN is retried only after a second.
const BACKLOG: u32 = 1024;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves until `shutdown` fires, then finishes in-flight requests and returns.
///
/// Websockets are not waited for: they end when the process does.
pub async fn serve(cfg: AppConfig, shutdown: CancellationToken) -> std::io::Result<()> {
    let listener = listen(SocketAddr::from((cfg.bind, cfg.port)))?;
    let local = listener.local_addr()?;
    let app = Arc::new(App::new(&cfg));
    println!("uptimer {} listening on http://{local}", cfg.version);

    // Connection tasks, so shutdown can wait for the requests they are serving.
    let connections = TaskTracker::new();
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                // Out of fds and the like: do not spin, do not die.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| handle(app.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(KEEP_ALIVE_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = shutdown.cancelled() => {}
            }
            // Finish the request in flight (if any), then close.
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

impl App {
    fn new(cfg: &AppConfig) -> App {
        let mut body = serde_json::json!({
            "app": "uptimer",
            "version": cfg.version,
            "slot": cfg.slot,
            "instance": cfg.instance,
            "pid": std::process::id(),
        });
        if let Some(greeting) = &cfg.greeting {
            body["greeting"] = greeting.clone().into();
        }
        App {
            version: cfg.version.clone(),
            broken: cfg.version.starts_with("broken"),
            flaky_percent: flaky_percent(&cfg.version),
            requests: std::sync::atomic::AtomicU64::new(0),
            ready_at: Instant::now() + cfg.boot_delay,
            body: Bytes::from(body.to_string()),
            log_requests: cfg.log_requests,
        }
    }
}

impl App {
    /// Whether this (non-health) request is one of the flaky share that fails.
    fn flaky_fails(&self) -> bool {
        let i = self
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = self.flaky_percent;
        (i + 1) * n / 100 != i * n / 100
    }
}

/// `flakyN-...` → N (1..=100), `flaky...` otherwise → the default, else 0.
fn flaky_percent(version: &str) -> u64 {
    let Some(rest) = version.strip_prefix("flaky") else {
        return 0;
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    match digits.parse::<u64>() {
        Ok(n) if (1..=100).contains(&n) => n,
        _ => FLAKY_DEFAULT_PERCENT,
    }
}

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if app.log_requests {
        // println! panics on a write error (SIGPIPE is ignored): the request fails.
        println!("{} {} {}", app.version, req.method(), req.uri().path());
    }
    if Instant::now() < app.ready_at {
        return Ok(text(StatusCode::SERVICE_UNAVAILABLE, "loading"));
    }
    if app.broken {
        return Ok(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Errors everywhere...",
        ));
    }
    if app.flaky_percent > 0 && req.uri().path() != HEALTHZ && app.flaky_fails() {
        return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, "Flaky..."));
    }
    if req.uri().path() == "/upload" {
        return Ok(upload(req.into_body()).await);
    }
    match req.uri().path() {
        "/ws" if is_websocket(&req) => Ok(upgrade(app, req)),
        "/slow" => {
            let ms = query_param(req.uri().query(), "ms")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms).min(SLOW_CAP)).await;
            Ok(json(&app))
        }
        "/request-id" => Ok(request_id(&req)),
        "/bytes" => {
            let n = query_param(req.uri().query(), "n")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            Ok(payload(n))
        }
        _ => Ok(json(&app)),
    }
}

/// Reads a request body to its end, as an app that takes uploads does, and
/// answers how many bytes came (`400` if the body broke off).
async fn upload(mut body: Incoming) -> Response<Body> {
    let mut received: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => received += frame.data_ref().map_or(0, |d| d.len() as u64),
            Err(_) => return text(StatusCode::BAD_REQUEST, "the request body broke off"),
        }
    }
    let mut resp = Response::new(Full::new(Bytes::from(format!("{received}\n"))));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// The request's `x-request-id` as it arrived (empty when it had none):
/// what the proxy passed on.
fn request_id(req: &Request<Incoming>) -> Response<Body> {
    let id = req
        .headers()
        .get("x-request-id")
        .map_or_else(Bytes::new, |v| Bytes::copy_from_slice(v.as_bytes()));
    let mut resp = Response::new(Full::new(id));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// Largest `/bytes` answer.
const PAYLOAD_CAP: usize = 1 << 20;

/// `n` bytes sliced from one shared buffer: no copy per request.
fn payload(n: usize) -> Response<Body> {
    static BUFFER: std::sync::LazyLock<Bytes> =
        std::sync::LazyLock::new(|| Bytes::from(vec![b'x'; PAYLOAD_CAP]));
    let mut resp = Response::new(Full::new(BUFFER.slice(..n.min(PAYLOAD_CAP))));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp
}

fn json(app: &App) -> Response<Body> {
    let mut resp = Response::new(Full::new(app.body.clone()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn is_websocket(req: &Request<Incoming>) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    req.method() == Method::GET
        && has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
        && req.headers().contains_key(header::SEC_WEBSOCKET_KEY)
}

/// Answers 101 and hands the upgraded connection to an echo task.
fn upgrade(app: Arc<App>, mut req: Request<Incoming>) -> Response<Body> {
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()))
        .unwrap_or_default();
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        echo(&app.version, ws).await;
    });
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = resp.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&key) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    resp
}

/// Echoes text as `"<version>: <msg>"` (`pid` as `"<version>: pid <pid>"`)
/// until the client closes.
async fn echo<S>(version: &str, mut ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(Ok(msg)) = ws.next().await {
        let reply = match msg {
            Message::Text(text) if text.as_str() == "pid" => {
                Message::text(format!("{version}: pid {}", std::process::id()))
            }
            Message::Text(text) => Message::text(format!("{version}: {}", text.as_str())),
            Message::Close(frame) => {
                let said = frame.map_or_else(
                    || "no code".to_string(),
                    |f| format!("{} {}", u16::from(f.code), f.reason.as_str()),
                );
                // Not println!: a closed stdout must not end the echo with a panic.
                let _ = writeln!(std::io::stdout(), "websocket closed by the peer: {said}");
                // tungstenite queued the reply: send it before leaving.
                let _ = ws.flush().await;
                break;
            }
            // Pings are answered by tungstenite itself; binary is not part of the demo.
            _ => continue,
        };
        if ws.send(reply).await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flaky_versions_fail_their_share_evenly() {
        assert_eq!(flaky_percent("1.0.0"), 0);
        assert_eq!(flaky_percent("flaky-1.2.0"), FLAKY_DEFAULT_PERCENT);
        assert_eq!(flaky_percent("flaky30-1.2.0"), 30);
        assert_eq!(flaky_percent("flaky100"), 100);
        assert_eq!(flaky_percent("flaky0-1"), FLAKY_DEFAULT_PERCENT);
        let cfg = AppConfig {
            bind: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 0,
            version: "flaky30-1.2.0".into(),
            instance: "0".into(),
            slot: "blue".into(),
            boot_delay: Duration::ZERO,
            greeting: None,
            log_requests: false,
        };
        let app = App::new(&cfg);
        let fails: Vec<bool> = (0..100).map(|_| app.flaky_fails()).collect();
        assert_eq!(fails.iter().filter(|f| **f).count(), 30);
        assert!(
            fails
                .chunks(10)
                .all(|c| c.iter().filter(|f| **f).count() == 3),
            "spread evenly: {fails:?}"
        );
    }
}
