//! Request limits and error pages (issue 17), through the builtin proxy with
//! real apps and clients, on the lean path, on hyper's HTTP/1.1 path and
//! over h2c:
//!
//! - a service's `max_body`: a `Content-Length` over it gets 413 before the
//!   app sees anything; a chunked or h2 body that grows past it gets 413
//!   too, cut before or while it streams; a body under it passes. Counted as
//!   the client's error, never as an upstream failure or a 5xx (a verify
//!   window never trips on it). nginx: `client_max_body_size`, 413.
//! - header limits by bytes: 101 request headers and 101 response headers
//!   pass (httparse's array holds 100), and heads past the byte limits still
//!   get 431 (16 KiB, requests) and 502 (64 KiB, responses), as nginx limits
//!   them by `large_client_header_buffers` and `proxy_buffer_size`.
//! - error pages: the service's `502.html`, `503.html` and `504.html` for the
//!   proxy's own 502 (instance down), 503 (no backend) and 504 (response
//!   timeout), as text/html; teal's text when a page is missing. nginx:
//!   `error_page`.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use teal::router::{Router, TrafficStats};
use teal::slot::Slot;
use teal::spec::ServiceSpec;
use teal_proxy::ProxyOptions;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::proxy::*;

/// The default service "web" with `max_body`.
fn limited(max_body: u64) -> ServiceSpec {
    let mut spec = spec("web", &[], None);
    spec.policy.max_body = Some(max_body);
    spec
}

/// The default service "web" with these error pages.
fn paged(pages: &[(u16, &str)]) -> ServiceSpec {
    let mut spec = spec("web", &[], None);
    for (status, page) in pages {
        spec.policy.error_pages.insert(*status, page.to_string());
    }
    spec
}

/// A proxy with `opts` routing `spec` to a test app on the blue slot.
async fn started(spec: &ServiceSpec, opts: ProxyOptions) -> (TestBackend, Harness) {
    let app = TestBackend::start("app").await;
    let h = Harness::with(opts).await;
    h.proxy
        .set_routes(spec, backend(Slot::Blue, &[app.addr]), None)
        .await
        .expect("routes install");
    (app, h)
}

fn blue(h: &Harness) -> TrafficStats {
    h.proxy.stats("web", Slot::Blue)
}

/// `n` client errors, and nothing counted against the instance.
fn assert_client_errors(h: &Harness, what: &str, n: u64) {
    let stats = blue(h);
    assert_eq!(stats.client_errors, n, "{what}: {stats:?}");
    assert_eq!(stats.upstream_failures, 0, "{what}: {stats:?}");
    assert_eq!(stats.responses_5xx, 0, "{what}: {stats:?}");
}

/// A chunked body of `chunks` chunks of `size` bytes, and its end.
fn chunked(chunks: usize, size: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for _ in 0..chunks {
        body.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        body.extend(std::iter::repeat_n(b'a', size));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

/// An h2c connection of hyper's client to the proxy.
async fn h2c(h: &Harness) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(h.addr()).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2c handshake");
    tokio::spawn(conn);
    sender
}

/// Status and body of one h2 response.
async fn h2_answer(response: http::Response<hyper::body::Incoming>) -> (u16, String) {
    let status = response.status().as_u16();
    let body = tokio::time::timeout(EXCHANGE, response.into_body().collect())
        .await
        .expect("the body within the exchange bound")
        .expect("the whole body");
    (
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_over_max_body_gets_413_and_the_app_sees_nothing() {
    for path in PATHS {
        let (app, h) = started(&limited(1000), ProxyOptions::default()).await;
        // Under the limit first: served (a chunked one moved the
        // connection to hyper's path).
        let mut stream = connection(&h, path).await;
        let mut request =
            b"POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: 1000\r\n\r\n".to_vec();
        request.extend(std::iter::repeat_n(b'a', 1000));
        stream.write_all(&request).await.unwrap();
        let reply = read_response(&mut stream).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{path:?}: {reply}");
        assert!(reply.ends_with(&"a".repeat(1000)), "{path:?}: {reply}");
        let hits = app.hits();
        // Over it: 413 on the head alone, the body never read.
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: 1001\r\n\r\n")
            .await
            .unwrap();
        let reply = read_to_close(&mut stream).await;
        assert!(reply.starts_with("HTTP/1.1 413"), "{path:?}: {reply}");
        assert_eq!(app.hits(), hits, "{path:?}: the app saw the request");
        assert_client_errors(&h, &format!("{path:?}"), 1);
        // With the body sent at once behind the head: the client still
        // reads the 413 (the proxy lingers instead of resetting).
        let mut request =
            b"POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: 60000\r\n\r\n".to_vec();
        request.extend(std::iter::repeat_n(b'a', 60000));
        let reply = raw_exchange(h.addr(), &request).await;
        assert!(reply.starts_with("HTTP/1.1 413"), "{path:?}: {reply}");
        assert_client_errors(&h, &format!("{path:?}"), 2);
        // Far over the lean path's own bound too (hyper's path serves it).
        let reply = raw_exchange(
            h.addr(),
            b"PUT /echo HTTP/1.1\r\nHost: app\r\nContent-Length: 10000000\r\n\r\n",
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 413"), "{path:?}: {reply}");
        assert_eq!(app.hits(), hits, "{path:?}: the app saw the request");
        assert_client_errors(&h, &format!("{path:?}"), 3);
    }
}

/// A chunked body that passes the limit while the proxy reads it before
/// routing (within the body buffer): 413, and nothing went upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_past_max_body_gets_413_before_the_app() {
    for path in PATHS {
        let (app, h) = started(&limited(1000), ProxyOptions::default()).await;
        let mut stream = connection(&h, path).await;
        let hits = app.hits();
        let mut request =
            b"POST /echo HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        request.extend(chunked(2, 600));
        stream.write_all(&request).await.unwrap();
        let reply = read_to_close(&mut stream).await;
        assert!(reply.starts_with("HTTP/1.1 413"), "{path:?}: {reply}");
        assert_eq!(app.hits(), hits, "{path:?}: the app saw the request");
        assert_client_errors(&h, &format!("{path:?}"), 1);
    }
}

/// A chunked body that passes the limit after the request went upstream
/// (the body buffer is smaller than the limit): the upstream request is
/// cut, the client gets 413, and the app never answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_growing_past_max_body_while_streamed_is_cut_with_413() {
    let opts = ProxyOptions {
        body_buffer: 1024,
        ..ProxyOptions::default()
    };
    let (_app, h) = started(&limited(4096), opts).await;
    let mut stream = TcpStream::connect(h.addr()).await.unwrap();
    let mut request =
        b"POST /echo HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    request.extend(chunked(6, 1024));
    stream.write_all(&request).await.unwrap();
    let reply = read_to_close(&mut stream).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(!reply.contains("app:"), "the app answered: {reply}");
    assert_client_errors(&h, "streamed", 1);
    // The instance still serves (its cut connection was not reused).
    let reply = get_fresh(h.addr(), "app", "/").await.expect("a response");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "app");
}

/// h2c: a body over the limit, whole or streamed, gets 413; under it, 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_bodies_past_max_body_get_413() {
    let opts = ProxyOptions {
        body_buffer: 1024,
        ..ProxyOptions::default()
    };
    let (app, h) = started(&limited(4096), opts).await;
    let mut sender = h2c(&h).await;
    let post = |body: Vec<u8>| {
        Request::post("http://app/echo")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let response = sender.send_request(post(vec![b'a'; 4096])).await.unwrap();
    let (status, body) = h2_answer(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.len(), "app:".len() + 4096);
    let hits = app.hits();
    let response = sender.send_request(post(vec![b'a'; 4097])).await.unwrap();
    let (status, body) = h2_answer(response).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(app.hits(), hits, "the app saw the request");
    // Streamed, with no length: cut once it passes the limit.
    let mut sender = {
        let stream = TcpStream::connect(h.addr()).await.unwrap();
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2c handshake");
        tokio::spawn(conn);
        sender
    };
    let frames =
        (0..6).map(|_| Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![b'a'; 1024]))));
    let body = StreamBody::new(futures_util::stream::iter(frames));
    let req = Request::post("http://app/echo").body(body).unwrap();
    let response = tokio::time::timeout(EXCHANGE, sender.send_request(req))
        .await
        .expect("an answer within the exchange bound")
        .expect("a response head");
    let (status, body) = h2_answer(response).await;
    assert_eq!(status, 413, "{body}");
    assert_client_errors(&h, "h2c", 2);
}

/// A request head of `headers` lines `x-req-<i>: <value>` for `target`.
fn many_line_request(target: &str, headers: usize, value: &str) -> Vec<u8> {
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: app\r\n");
    for i in 0..headers {
        request.push_str(&format!("x-req-{i}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_and_one_headers_pass_both_ways_on_both_paths() {
    for path in PATHS {
        let (_app, h) = started(&spec("web", &[], None), ProxyOptions::default()).await;
        let mut stream = connection(&h, path).await;
        let handed = h.proxy.connections_handed_to_hyper();
        stream
            .write_all(&many_line_request("/many-headers?n=101", 101, "1"))
            .await
            .unwrap();
        let reply = read_response(&mut stream).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{path:?}: {reply}");
        assert!(reply.contains("x-h-0: vvvvvvvv\r\n"), "{path:?}: {reply}");
        assert!(reply.contains("x-h-100: vvvvvvvv\r\n"), "{path:?}: {reply}");
        // The app got the 101 lines, Host and the X-Forwarded-* ones.
        let body = reply.rsplit("\r\n\r\n").next().unwrap();
        let seen: usize = body.parse().expect("a count of headers");
        assert!(seen >= 102, "{path:?}: the app saw {seen} headers");
        // The lean path served it on its own.
        if path == Path::Lean {
            assert_eq!(h.proxy.connections_handed_to_hyper(), handed);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_and_one_headers_pass_both_ways_over_h2c() {
    let (_app, h) = started(&spec("web", &[], None), ProxyOptions::default()).await;
    let mut sender = h2c(&h).await;
    let mut req = Request::get("http://app/many-headers?n=101");
    for i in 0..101 {
        req = req.header(format!("x-req-{i}"), "1");
    }
    let response = sender
        .send_request(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let lines = response
        .headers()
        .keys()
        .filter(|k| k.as_str().starts_with("x-h-"))
        .count();
    let (status, body) = h2_answer(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(lines, 101);
    let seen: usize = body.parse().expect("a count of headers");
    assert!(seen >= 102, "the app saw {seen} headers");
}

/// Past the byte limits: 431 for a request head over 16 KiB, 502 for a
/// response head over 64 KiB, however few lines they have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_past_the_byte_limits_get_431_and_502() {
    for path in PATHS {
        let (_app, h) = started(&spec("web", &[], None), ProxyOptions::default()).await;
        let mut stream = connection(&h, path).await;
        // 101 lines of 200 bytes: 20 KiB.
        let value = "v".repeat(200);
        stream
            .write_all(&many_line_request("/", 101, &value))
            .await
            .unwrap();
        let reply = read_to_close(&mut stream).await;
        assert!(reply.starts_with("HTTP/1.1 431"), "{path:?}: {reply}");

        let mut stream = connection(&h, path).await;
        // 700 lines of 100 bytes: 70 KiB.
        stream
            .write_all(b"GET /many-headers?n=700&len=100 HTTP/1.1\r\nHost: app\r\n\r\n")
            .await
            .unwrap();
        let reply = read_response(&mut stream).await;
        assert!(reply.starts_with("HTTP/1.1 502"), "{path:?}: {reply}");
    }
}

/// One request for `target` on a fresh connection served by `path` (a GET
/// on the lean path, a chunked POST on hyper's), answered and closed.
async fn ask(h: &Harness, path: Path, target: &str) -> String {
    let request = match path {
        Path::Lean => format!("GET {target} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"),
        Path::Hyper => format!(
            "POST {target} HTTP/1.1\r\nHost: app\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
    };
    raw_exchange(h.addr(), request.as_bytes()).await
}

const PAGES: [(u16, &str); 3] = [
    (502, "<h1>502 page</h1>\n"),
    (503, "<h1>503 page</h1>\n"),
    (504, "<h1>504 page</h1>\n"),
];

fn assert_page(reply: &str, status: u16, what: &str) {
    assert!(
        reply.starts_with(&format!("HTTP/1.1 {status}")),
        "{what}: {reply}"
    );
    let lower = reply.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: text/html; charset=utf-8\r\n"),
        "{what}: {reply}"
    );
    assert!(
        reply.ends_with(&format!("<h1>{status} page</h1>\n")),
        "{what}: {reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_error_pages_answer_502_503_and_504() {
    let opts = ProxyOptions {
        response_timeout: Duration::from_millis(300),
        ..ProxyOptions::default()
    };
    let (_app, h) = started(&paged(&PAGES), opts).await;
    for path in PATHS {
        // 504: the app does not answer within the response timeout.
        assert_page(
            &ask(&h, path, "/slow?ms=3000").await,
            504,
            &format!("{path:?}"),
        );
    }
    // 502: the instance is down.
    h.proxy
        .set_routes(&paged(&PAGES), backend(Slot::Blue, &[unused_addr()]), None)
        .await
        .unwrap();
    for path in PATHS {
        assert_page(&ask(&h, path, "/").await, 502, &format!("{path:?}"));
    }
    // 503: no backend.
    h.proxy
        .set_routes(&paged(&PAGES), None, None)
        .await
        .unwrap();
    for path in PATHS {
        assert_page(&ask(&h, path, "/").await, 503, &format!("{path:?}"));
    }
    // Over h2c too.
    let mut sender = h2c(&h).await;
    let req = Request::get("http://app/")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    let content_type = response.headers().get("content-type").cloned();
    let (status, body) = h2_answer(response).await;
    assert_eq!(status, 503);
    assert_eq!(body, "<h1>503 page</h1>\n");
    assert_eq!(content_type.unwrap(), "text/html; charset=utf-8");
    assert_eq!(
        h.proxy.error_page("web", 503).as_deref(),
        Some(&b"<h1>503 page</h1>\n"[..])
    );
}

/// A status without a page gets teal's plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_error_page_falls_back_to_text() {
    let only_503 = paged(&PAGES[1..2]);
    let h = Harness::start().await;
    h.proxy
        .set_routes(&only_503, backend(Slot::Blue, &[unused_addr()]), None)
        .await
        .unwrap();
    for path in PATHS {
        let reply = ask(&h, path, "/").await;
        assert!(reply.starts_with("HTTP/1.1 502"), "{path:?}: {reply}");
        assert!(
            reply
                .to_ascii_lowercase()
                .contains("content-type: text/plain; charset=utf-8\r\n"),
            "{path:?}: {reply}"
        );
        assert!(
            reply.ends_with("bad gateway: upstream connect failed\n"),
            "{path:?}: {reply}"
        );
    }
    assert!(h.proxy.error_page("web", 502).is_none());
}
