//! Test apps: a hyper HTTP/1.1 server with a few special paths, and a raw app
//! that drops reused keep-alive connections.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_util::sync::CancellationToken;

use super::loopback;

/// A test app: answers its name on any path, plus a few special paths:
/// `/headers` (echoes the request head, answers with hop-by-hop headers),
/// `/slow?ms=N`, `/status/500[?ms=N]`, and `/ws` (websocket echo as "name:text").
pub struct TestBackend {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    /// Slow requests that finished (counted just before answering).
    slow_done: Arc<AtomicUsize>,
    /// The close code of each close frame a `/ws` echo received (None: one
    /// without a code), in order.
    ws_closes: Arc<Mutex<Vec<Option<u16>>>>,
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
            hits: Arc::default(),
            slow_done: Arc::default(),
            ws_closes: Arc::default(),
            stop: CancellationToken::new(),
        };
        let state = State {
            name: Arc::from(name),
            hits: backend.hits.clone(),
            slow_done: backend.slow_done.clone(),
            ws_closes: backend.ws_closes.clone(),
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
                    // Takes heads of many lines (`/many-headers`), as apps do.
                    let conn = hyper::server::conn::http1::Builder::new()
                        .max_headers(1000)
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

    /// The close codes the `/ws` echoes received so far.
    pub fn ws_closes(&self) -> Vec<Option<u16>> {
        self.ws_closes.lock().unwrap().clone()
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
    ws_closes: Arc<Mutex<Vec<Option<u16>>>>,
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
        "/status/500" => {
            // `?ms=N`: answer only after N ms (a failure that arrives late).
            let ms = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("ms="))
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            text(StatusCode::INTERNAL_SERVER_ERROR, name)
        }
        "/echo" => {
            let body = req.into_body().collect().await.map(|c| c.to_bytes());
            let body = body.unwrap_or_default();
            text(
                StatusCode::OK,
                format!("{name}:{}", String::from_utf8_lossy(&body)),
            )
        }
        "/many-headers" => many_headers(&req),
        "/ws" => websocket(name, state.ws_closes.clone(), &mut req),
        _ => text(StatusCode::OK, name),
    };
    Ok(response)
}

/// `/many-headers?n=N&len=L`: a 200 with N headers `x-h-<i>` of L bytes
/// each (default 8), whose body is how many request headers the app got.
fn many_headers(req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let query = req.uri().query().unwrap_or("");
    let param = |key: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let (n, len) = (param("n").unwrap_or(0), param("len").unwrap_or(8));
    let mut response = text(StatusCode::OK, format!("{}", req.headers().len()));
    let value: http::HeaderValue = "v".repeat(len).parse().unwrap();
    for i in 0..n {
        let name: http::HeaderName = format!("x-h-{i}").parse().unwrap();
        response.headers_mut().insert(name, value.clone());
    }
    response
}

fn websocket(
    name: String,
    closes: Arc<Mutex<Vec<Option<u16>>>>,
    req: &mut Request<Incoming>,
) -> Response<Full<Bytes>> {
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
                Message::Close(frame) => {
                    let code = frame.map(|f| u16::from(f.code));
                    closes.lock().unwrap().push(code);
                    // tungstenite queued the reply: send it before leaving.
                    let _ = ws.flush().await;
                    return;
                }
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
