//! The load client against real servers on 127.0.0.1:0: it counts every outcome
//! exactly once, by the right kind, and respects its bounds.
//!
//! Every assertion compares the client's counts with what the server did; none is
//! about time.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use teal::load::{Load, LoadReport, LoadSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a test server saw.
#[derive(Default)]
struct Seen {
    connections: AtomicU64,
    requests: AtomicU64,
    /// Answers by a label the test chooses (a status, a version, an action).
    answers: Mutex<BTreeMap<String, u64>>,
    /// Host header and path of every request.
    targets: Mutex<Vec<(String, String)>>,
}

impl Seen {
    fn count(&self, label: impl Into<String>) {
        *self
            .answers
            .lock()
            .unwrap()
            .entry(label.into())
            .or_default() += 1;
    }

    fn answers(&self) -> BTreeMap<String, u64> {
        self.answers.lock().unwrap().clone()
    }
}

/// A real hyper HTTP/1.1 server; `answer` gets the request's index (from 0).
async fn hyper_server<F>(answer: F) -> (SocketAddr, Arc<Seen>)
where
    F: Fn(u64, &Seen) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let answer = Arc::new(answer);
    let server_seen = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            server_seen.connections.fetch_add(1, Ordering::SeqCst);
            let (seen, answer) = (server_seen.clone(), answer.clone());
            let service = service_fn(move |request: Request<Incoming>| {
                let n = seen.requests.fetch_add(1, Ordering::SeqCst);
                let host = request
                    .headers()
                    .get(http::header::HOST)
                    .map(|h| h.to_str().unwrap().to_owned());
                let path = request.uri().path_and_query().map(|p| p.to_string());
                seen.targets
                    .lock()
                    .unwrap()
                    .push((host.unwrap_or_default(), path.unwrap_or_default()));
                let response = answer(n, &seen);
                async move { Ok::<_, Infallible>(response) }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

fn json(version: &str) -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from(format!(
        r#"{{"version":"{version}","instance":"a"}}"#
    ))))
}

fn spec(target: SocketAddr, max_requests: u64) -> LoadSpec {
    LoadSpec {
        keepalive_connections: 4,
        fresh_connection_workers: 2,
        max_requests,
        max_duration: Duration::from_secs(120),
        request_timeout: Duration::from_secs(30),
        ..LoadSpec::new(target)
    }
}

#[track_caller]
fn assert_every_request_counted_once(report: &LoadReport) {
    assert_eq!(report.sent, report.ok + report.failed(), "{report:#?}");
}

#[tokio::test]
async fn counts_ok_answers_and_their_versions() {
    let (addr, seen) = hyper_server(|n, seen| {
        let version = if n % 3 == 0 { "2.0.0" } else { "1.0.0" };
        seen.count(version);
        json(version)
    })
    .await;
    let report = Load::start(spec(addr, 300)).wait().await;

    assert_eq!(report.sent, 300);
    assert_eq!(report.ok, 300);
    assert_eq!(report.failed(), 0, "{report:#?}");
    assert_eq!(report.versions, seen.answers());
    assert!(report.latency_p50 <= report.latency_p99 && report.latency_p99 <= report.latency_max);
    let table = report.render_table();
    assert!(
        table.contains("version 2.0.0") && table.contains("failed"),
        "{table}"
    );
}

#[tokio::test]
async fn ok_answers_without_a_version_are_counted_as_none() {
    let (addr, _) =
        hyper_server(|_, _| Response::new(Full::new(Bytes::from_static(b"plain text")))).await;
    let report = Load::start(spec(addr, 20)).wait().await;
    assert_eq!(report.ok, 20);
    assert_eq!(
        report.versions.get(teal::load::NO_VERSION),
        Some(&20),
        "{report:#?}"
    );
}

#[tokio::test]
async fn counts_other_statuses() {
    let (addr, seen) = hyper_server(|n, seen| {
        let status = match n % 5 {
            0 => StatusCode::INTERNAL_SERVER_ERROR,
            1 => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::OK,
        };
        seen.count(status.as_str());
        let mut response = json("1.0.0");
        *response.status_mut() = status;
        response
    })
    .await;
    let report = Load::start(spec(addr, 200)).wait().await;

    assert_every_request_counted_once(&report);
    assert_eq!(report.sent, 200);
    let answers = seen.answers();
    assert_eq!(report.ok, answers["200"]);
    assert_eq!(report.statuses.get(&500), answers.get("500"), "{report:#?}");
    assert_eq!(report.statuses.get(&503), answers.get("503"), "{report:#?}");
    assert_eq!(report.statuses.len(), 2);
    assert!(report.errors.is_empty(), "{report:#?}");
}

/// What the raw server does with one request.
#[derive(Clone, Copy, Debug)]
enum Act {
    Answer,
    /// Sends the head and part of the body, then closes.
    CutBody,
    /// Closes without answering.
    CloseEarly,
    /// Closes with a TCP reset (SO_LINGER 0).
    Reset,
    /// Never answers.
    Hang,
}

/// A hand-written HTTP/1.1 server that misbehaves on purpose; `act` gets the
/// request's index (from 0).
async fn raw_server(act: fn(u64) -> Act) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let server_seen = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            server_seen.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(raw_connection(stream, server_seen.clone(), act));
        }
    });
    (addr, seen)
}

async fn raw_connection(mut stream: TcpStream, seen: Arc<Seen>, act: fn(u64) -> Act) {
    let mut buffer = Vec::new();
    loop {
        // Requests are GETs without a body: a request ends at the blank line.
        while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buffer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        buffer.drain(..end);
        let act = act(seen.requests.fetch_add(1, Ordering::SeqCst));
        seen.count(format!("{act:?}"));
        match act {
            Act::Answer => {
                let body = r#"{"version":"raw"}"#;
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
                if stream
                    .write_all(format!("{head}{body}").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Act::CutBody => {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"vers")
                    .await;
                return;
            }
            Act::CloseEarly => return,
            Act::Reset => {
                stream.set_zero_linger().unwrap();
                return;
            }
            Act::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
        }
    }
}

#[tokio::test]
async fn counts_connections_cut_mid_response_as_incomplete_and_goes_on() {
    let (addr, seen) = raw_server(|n| match n % 4 {
        3 => Act::CutBody,
        1 => Act::CloseEarly,
        _ => Act::Answer,
    })
    .await;
    let report = Load::start(spec(addr, 120)).wait().await;

    assert_every_request_counted_once(&report);
    assert_eq!(report.sent, 120);
    let answers = seen.answers();
    assert_eq!(report.ok, answers["Answer"], "{report:#?}");
    assert_eq!(report.versions.get("raw"), Some(&report.ok));
    let cut = answers["CutBody"] + answers["CloseEarly"];
    assert_eq!(report.errors.get("incomplete"), Some(&cut), "{report:#?}");
    assert_eq!(report.errors.len(), 1, "{report:#?}");
}

#[tokio::test]
async fn counts_resets() {
    let (addr, seen) = raw_server(|n| if n % 2 == 0 { Act::Reset } else { Act::Answer }).await;
    let report = Load::start(spec(addr, 60)).wait().await;

    assert_every_request_counted_once(&report);
    let answers = seen.answers();
    assert_eq!(report.ok, answers["Answer"], "{report:#?}");
    assert_eq!(
        report.errors.get("reset"),
        Some(&answers["Reset"]),
        "{report:#?}"
    );
    assert_eq!(report.errors.len(), 1, "{report:#?}");
}

#[tokio::test]
async fn counts_timeouts() {
    let (addr, seen) = raw_server(|_| Act::Hang).await;
    let load = LoadSpec {
        keepalive_connections: 1,
        fresh_connection_workers: 1,
        max_requests: 4,
        request_timeout: Duration::from_millis(200),
        ..LoadSpec::new(addr)
    };
    let report = Load::start(load).wait().await;

    assert_eq!(report.sent, 4);
    assert_eq!(report.errors.get("timeout"), Some(&4), "{report:#?}");
    assert!(seen.requests.load(Ordering::SeqCst) <= 4);
}

#[tokio::test]
async fn counts_refused_connections() {
    // Bound but not listening: connections are refused, and no other test can
    // take the port meanwhile.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let report = Load::start(spec(addr, 25)).wait().await;

    assert_eq!(report.sent, 25);
    assert_eq!(report.ok, 0);
    assert_eq!(report.errors.get("refused"), Some(&25), "{report:#?}");
}

#[tokio::test]
async fn max_requests_is_a_hard_bound() {
    let (addr, seen) = hyper_server(|_, _| json("1.0.0")).await;
    let load = LoadSpec {
        keepalive_connections: 5,
        fresh_connection_workers: 3,
        ..spec(addr, 37)
    };
    let report = Load::start(load).wait().await;

    assert_eq!(report.sent, 37);
    assert_eq!(report.ok, 37);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 37);
}

#[tokio::test]
async fn max_duration_ends_the_load() {
    let (addr, seen) = hyper_server(|_, _| json("1.0.0")).await;
    let load = LoadSpec {
        max_requests: u64::MAX,
        max_duration: Duration::from_millis(300),
        pause: Duration::from_millis(5),
        ..spec(addr, 0)
    };
    let report = Load::start(load).wait().await;

    assert_every_request_counted_once(&report);
    assert_eq!(report.failed(), 0, "{report:#?}");
    assert_eq!(seen.requests.load(Ordering::SeqCst), report.sent);
}

#[tokio::test]
async fn stop_awaits_requests_in_flight() {
    let (addr, seen) = hyper_server(|_, _| json("1.0.0")).await;
    let load = Load::start(spec(addr, 1_000_000));
    // Bounded wait for some progress; not an assertion about speed.
    for _ in 0..3000 {
        if load.snapshot().ok >= 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let running = load.snapshot();
    assert!(running.ok >= 50, "{running:#?}");
    let report = load.stop().await;

    assert_every_request_counted_once(&report);
    assert_eq!(report.failed(), 0, "{report:#?}");
    assert!(report.sent >= running.sent && report.sent < 1_000_000);
    assert_eq!(seen.requests.load(Ordering::SeqCst), report.sent);
}

#[tokio::test]
async fn keepalive_workers_reuse_one_connection_and_fresh_workers_do_not() {
    let (addr, seen) = hyper_server(|_, _| json("1.0.0")).await;
    let keepalive = LoadSpec {
        keepalive_connections: 2,
        fresh_connection_workers: 0,
        ..spec(addr, 50)
    };
    assert_eq!(Load::start(keepalive).wait().await.ok, 50);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);

    let (addr, seen) = hyper_server(|_, _| json("1.0.0")).await;
    let fresh = LoadSpec {
        keepalive_connections: 0,
        fresh_connection_workers: 3,
        ..spec(addr, 30)
    };
    assert_eq!(Load::start(fresh).wait().await.ok, 30);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 30);
}

#[tokio::test]
async fn sends_the_host_and_path_asked_for() {
    let (addr, seen) = hyper_server(|_, _| json("1.0.0")).await;
    let load = LoadSpec {
        host: Some("app.example".into()),
        path: "/status?full=1".into(),
        ..spec(addr, 10)
    };
    assert_eq!(Load::start(load).wait().await.ok, 10);
    let targets = seen.targets.lock().unwrap().clone();
    assert_eq!(targets.len(), 10);
    assert!(
        targets
            .iter()
            .all(|(host, path)| host == "app.example" && path == "/status?full=1"),
        "{targets:?}"
    );
}

#[tokio::test]
async fn no_workers_means_no_requests() {
    let load = LoadSpec {
        keepalive_connections: 0,
        fresh_connection_workers: 0,
        ..LoadSpec::new("127.0.0.1:9".parse().unwrap())
    };
    let report = Load::start(load).stop().await;
    assert_eq!(report.sent, 0);
    assert_eq!(report.failed(), 0);
}
