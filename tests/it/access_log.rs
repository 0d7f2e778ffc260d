//! The builtin proxy's access log, against the real `teal serve`: a JSON line
//! per request on both HTTP paths (the lean HTTP/1.1 one and hyper's, h2c
//! here) with every field checked, the request id kept or made and passed to
//! the app, the proxy's own answers (404, 502) logged, SIGUSR1 reopening the
//! file after logrotate's rename with no line lost, `teal logs --access`, the
//! shutdown writing out the last lines, and a 502's cause in the daemon's log
//! at the default level (warn).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpStream;

use crate::support::proxy::{Conn, EXCHANGE, Reply};
use crate::support::served::{self, Served, logs, teal_ok};
use crate::support::{TEAL, eventually};

/// `teal.toml` with an access log file and one demo service on `app.test`.
fn write_config(dir: &Path) {
    let toml = format!(
        r#"state_dir = "state"

[proxy]
listen = "127.0.0.1:0"
access_log = "access.log"

[services.web]
command = ["{TEAL}", "demo-app", "--port", "{{port}}", "--app-version", "{{version}}"]
version = "1.0.0"
hosts = ["app.test"]

[services.web.health]
interval = "50ms"
deadline = "10s"
"#
    );
    std::fs::write(dir.join("teal.toml"), toml).unwrap();
}

/// `teal serve` in `dir` with the access log on, web deployed: the daemon
/// and its production address.
async fn deployed(dir: &Path) -> (Served, SocketAddr) {
    write_config(dir);
    let served = Served::start(dir).await;
    teal_ok(dir, &["deploy", "web"]).await;
    (served, served::listen_addr(dir))
}

/// The access log's lines so far, parsed (each must be one JSON object).
fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// Waits (bounded) until the file holds a line with `request_id`; returns it.
async fn line_with(path: &Path, request_id: &str) -> Value {
    let mut found = None;
    eventually(Duration::from_secs(10), async || {
        found = lines(path)
            .into_iter()
            .find(|l| l["request_id"] == request_id);
        found.is_some()
    })
    .await;
    found.unwrap_or_else(|| panic!("a line for {request_id} in {}", path.display()))
}

async fn get(addr: SocketAddr, host: &str, path: &str, id: Option<&str>) -> Reply {
    let mut conn = Conn::open(addr).await.unwrap();
    let mut req = Request::get(path).header("host", host);
    if let Some(id) = id {
        req = req.header("x-request-id", id);
    }
    conn.send(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap()
}

/// One h2c request (hyper's path): status and body.
async fn h2_get(addr: SocketAddr, uri: &str, id: Option<&str>) -> (u16, String) {
    let mut req = Request::get(uri);
    if let Some(id) = id {
        req = req.header("x-request-id", id);
    }
    h2_exchange(addr, req.body(Full::new(Bytes::new())).unwrap()).await
}

/// One request over a new h2c connection: the answer's status and body.
async fn h2_exchange<B>(addr: SocketAddr, req: Request<B>) -> (u16, String)
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let exchange = async {
        let response = sender.send_request(req).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    tokio::time::timeout(EXCHANGE, exchange)
        .await
        .expect("h2c answer")
}

/// The live slot of `web` and its instance addresses, from `teal status`.
async fn live(dir: &Path) -> (String, Vec<String>) {
    let out = teal_ok(dir, &["status", "web", "--json"]).await;
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let service = &status["services"][0];
    let slot = service["active_slot"].as_str().unwrap().to_string();
    let addrs = service["slots"][&slot]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["addr"].as_str().unwrap().to_string())
        .collect();
    (slot, addrs)
}

fn is_made_id(id: &str) -> bool {
    id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The fields every forwarded request's line has.
fn assert_forwarded(line: &Value, slot: &str, instances: &[String]) {
    assert_eq!(line["service"], "web", "{line}");
    assert_eq!(line["slot"], slot, "{line}");
    assert_eq!(line["version"], "1.0.0", "{line}");
    assert!(
        instances.iter().any(|a| line["instance"] == a.as_str()),
        "{line} names one of {instances:?}"
    );
    assert_eq!(line["client"], "127.0.0.1", "{line}");
    assert_eq!(line["host"], "app.test", "{line}");
    let total = line["duration_ms"].as_f64().unwrap();
    let upstream = line["upstream_ms"].as_f64().unwrap();
    assert!(upstream <= total, "{line}");
    let time = line["time"].as_str().unwrap();
    assert!(
        time.len() == 24 && time.ends_with('Z') && time.as_bytes()[19] == b'.',
        "RFC 3339 UTC with ms: {time}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_per_request_on_both_paths_with_request_ids_passed_to_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (served, addr) = deployed(dir).await;
    let (slot, instances) = live(dir).await;
    let log = dir.join("access.log");

    // HTTP/1.1 (the lean path): the client's id is kept and reaches the app.
    let kept = get(addr, "app.test", "/request-id?a=1&b=2", Some("client-id-1")).await;
    assert_eq!((kept.status, kept.body.as_str()), (200, "client-id-1"));
    let line = line_with(&log, "client-id-1").await;
    assert_forwarded(&line, &slot, &instances);
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/request-id?a=1&b=2");
    assert_eq!(line["protocol"], "HTTP/1.1");
    assert_eq!(line["status"], 200);
    assert_eq!(line["request_bytes"], 0);
    assert_eq!(line["response_bytes"], "client-id-1".len());

    // None from the client: one is made, passed on, and logged.
    let made = get(addr, "app.test", "/request-id", None).await;
    assert!(
        is_made_id(&made.body),
        "a made id reached the app: {made:?}"
    );
    let line = line_with(&log, &made.body).await;
    assert_forwarded(&line, &slot, &instances);
    // An id that is not sane is dropped, and one made instead.
    let insane = get(addr, "app.test", "/request-id", Some("a b")).await;
    assert!(is_made_id(&insane.body), "{insane:?}");

    // A body on the lean path: its bytes both ways.
    let mut conn = Conn::open(addr).await.unwrap();
    let upload = Request::post("/upload")
        .header("host", "app.test")
        .header("x-request-id", "upload-1")
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap();
    let reply = conn.send(upload).await.unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "5\n"));
    let line = line_with(&log, "upload-1").await;
    assert_eq!(line["method"], "POST");
    assert_eq!(line["request_bytes"], 5);
    assert_eq!(line["response_bytes"], 2);

    // h2c (hyper's path), with an id and without.
    let (status, body) = h2_get(addr, "http://app.test/request-id?h2", Some("h2-id-1")).await;
    assert_eq!((status, body.as_str()), (200, "h2-id-1"));
    let line = line_with(&log, "h2-id-1").await;
    assert_forwarded(&line, &slot, &instances);
    assert_eq!(line["protocol"], "HTTP/2");
    assert_eq!(line["path"], "/request-id?h2");
    assert_eq!(line["status"], 200);
    assert_eq!(line["response_bytes"], "h2-id-1".len());
    let (status, body) = h2_get(addr, "http://app.test/request-id", None).await;
    assert_eq!(status, 200);
    assert!(is_made_id(&body), "h2c made id: {body}");
    line_with(&log, &body).await;
    // A body without a length (HTTP/2 DATA frames, no content-length): its
    // bytes counted as they were forwarded.
    let chunks = ["hello ", "h2 ", "world"].map(|c| {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from_static(
            c.as_bytes(),
        )))
    });
    let upload = Request::post("http://app.test/upload")
        .header("x-request-id", "h2-upload-1")
        .body(http_body_util::StreamBody::new(futures_util::stream::iter(
            chunks,
        )))
        .unwrap();
    assert_eq!(h2_exchange(addr, upload).await, (200, "14\n".to_string()));
    let line = line_with(&log, "h2-upload-1").await;
    assert_eq!(line["request_bytes"], 14);
    assert_eq!(line["response_bytes"], 3);
    // The same for a chunked HTTP/1.1 body.
    let chunked = b"POST /upload HTTP/1.1\r\nHost: app.test\r\nx-request-id: chunked-1\r\n\
        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n3\r\n h1\r\n0\r\n\r\n";
    let reply = crate::support::proxy::raw_exchange(addr, chunked).await;
    assert!(
        reply.starts_with("HTTP/1.1 200") && reply.ends_with("8\n"),
        "{reply}"
    );
    let line = line_with(&log, "chunked-1").await;
    assert_eq!(line["request_bytes"], 8);

    // The proxy's own answer: no route (404), service and slot empty.
    let lost = get(addr, "elsewhere.test", "/x", Some("no-route-1")).await;
    assert_eq!(lost.status, 404);
    let line = line_with(&log, "no-route-1").await;
    assert_eq!(
        (&line["service"], &line["slot"], &line["instance"]),
        (&Value::from(""), &Value::from(""), &Value::from(""))
    );
    assert_eq!(line["status"], 404);
    assert_eq!(line["response_bytes"], lost.body.len());
    assert_eq!(line["upstream_ms"], Value::Null);

    // `teal logs web --access`: the service's lines only, raw or compact.
    let out = teal_ok(dir, &["logs", "web", "--access", "--json"]).await;
    let shown: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = shown
        .iter()
        .map(|l| l["request_id"].as_str().unwrap())
        .collect();
    for id in ["client-id-1", "upload-1", "h2-id-1", made.body.as_str()] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    assert!(!ids.contains(&"no-route-1"), "{ids:?}");
    let out = teal_ok(dir, &["logs", "web", "--access"]).await;
    let human = String::from_utf8(out.stdout).unwrap();
    assert!(
        human.contains(" 200 HTTP/1.1 GET app.test/request-id?a=1&b=2 ")
            && human.contains("client-id-1"),
        "{human}"
    );

    // The last line before a stop is written by the shutdown.
    let last = get(addr, "app.test", "/", Some("last-before-stop")).await;
    assert_eq!(last.status, 200);
    served::terminated(served).await;
    let written = lines(&log);
    assert!(
        written
            .iter()
            .any(|l| l["request_id"] == "last-before-stop"),
        "the shutdown wrote the last line\n{}",
        logs(dir)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_reopens_the_file_after_a_rename_and_no_line_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (served, addr) = deployed(dir).await;
    let log = dir.join("access.log");
    let rotated = dir.join("access.log.1");
    let mut conn = Conn::open(addr).await.unwrap();
    let mut send = async |i: usize| {
        let req = Request::get(format!("/n/{i}"))
            .header("host", "app.test")
            .header("x-request-id", format!("serial-{i}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert_eq!(conn.send(req).await.unwrap().status, 200);
    };
    for i in 0..30 {
        send(i).await;
    }
    // `teal logs --access -f` follows the file, across the rotation below.
    let mut follower = served::teal(dir)
        .args(["logs", "web", "--access", "-f", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, followed) = std::sync::mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // The follower has read the file (its first line is here) before the
    // file moves: started after the move, it would find no file.
    let first = followed
        .recv_timeout(Duration::from_secs(15))
        .expect("the follower prints the lines already there");
    // logrotate without copytruncate: move, then signal.
    std::fs::rename(&log, &rotated).unwrap();
    for i in 30..40 {
        send(i).await;
    }
    let pid = nix::unistd::Pid::from_raw(served.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    let reopened = eventually(Duration::from_secs(10), async || log.exists()).await;
    assert!(
        reopened,
        "the access log was reopened at its path\n{}",
        logs(dir)
    );
    for i in 40..70 {
        send(i).await;
    }
    let all = async || {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for line in lines(&rotated).into_iter().chain(lines(&log)) {
            *seen
                .entry(line["request_id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        seen
    };
    let complete = eventually(Duration::from_secs(10), async || all().await.len() == 70).await;
    let seen = all().await;
    assert!(complete, "70 lines across both files: {seen:?}");
    assert!(seen.values().all(|&n| n == 1), "each line once: {seen:?}");
    // Everything sent after the reopen is in the new file.
    let new: Vec<String> = lines(&log)
        .iter()
        .map(|l| l["request_id"].as_str().unwrap().to_string())
        .collect();
    for i in 40..70 {
        assert!(
            new.contains(&format!("serial-{i}")),
            "serial-{i} in the new file: {new:?}"
        );
    }
    // The follower printed lines from before and after the rotation.
    let printed = served::blocking(move || {
        let first: Value = serde_json::from_str(&first).unwrap();
        let mut ids = vec![first["request_id"].as_str().unwrap().to_string()];
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !ids.iter().any(|id: &String| id == "serial-69") {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = followed.recv_timeout(left) else {
                break;
            };
            let line: Value = serde_json::from_str(&line).unwrap();
            ids.push(line["request_id"].as_str().unwrap().to_string());
        }
        ids
    })
    .await;
    let _ = follower.kill();
    let _ = follower.wait();
    for id in ["serial-0", "serial-35", "serial-69"] {
        assert!(
            printed.iter().any(|p| p == id),
            "{id} followed: {printed:?}"
        );
    }
    served::terminated(served).await;
}

/// An app that answers its health check and sends garbage for `/bad`.
const GARBAGE_APP: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
while True:
    c, _ = s.accept()
    data = b""
    while b"\r\n\r\n" not in data:
        d = c.recv(4096)
        if not d:
            break
        data += d
    first = data.split(b"\r\n", 1)[0]
    if b" /bad " in first:
        c.sendall(b"NOT HTTP AT ALL\r\n\r\n")
    else:
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
    c.close()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_502_is_logged_with_its_cause_at_the_default_level() {
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output();
    if !crate::support::require("python3", python.is_ok_and(|o| o.status.success())) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let toml = format!(
        r#"state_dir = "state"

[proxy]
listen = "127.0.0.1:0"
access_log = "access.log"

[services.garbage]
command = ["python3", "-c", '''{GARBAGE_APP}''', "{{port}}"]
version = "1"

[services.garbage.health]
interval = "50ms"
deadline = "10s"
"#
    );
    std::fs::write(dir.join("teal.toml"), toml).unwrap();
    let served = Served::start(dir).await;
    teal_ok(dir, &["deploy", "garbage"]).await;
    let addr = served::listen_addr(dir);
    let reply = get(addr, "any.test", "/bad", Some("bad-1")).await;
    assert_eq!(reply.status, 502);
    let line = line_with(&dir.join("access.log"), "bad-1").await;
    assert_eq!(
        (&line["service"], &line["status"]),
        (&Value::from("garbage"), &Value::from(502))
    );
    assert!(
        line["instance"].as_str().is_some_and(|i| !i.is_empty()),
        "{line}"
    );
    let warned = eventually(Duration::from_secs(10), async || {
        logs(dir).lines().any(|l| {
            l.contains("WARN")
                && l.contains("upstream failed")
                && l.contains("invalid response head")
        })
    })
    .await;
    assert!(
        warned,
        "the 502 and its cause at warn level:\n{}",
        logs(dir)
    );
    served::terminated(served).await;
}

/// `teal serve --upgrade` under load: the old daemon writes the lines of
/// what it served, the new one appends its own, and no line is lost: one
/// per answered request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_loses_no_line() {
    use crate::support::load::{finish_more, zero_drop};

    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (served, addr) = deployed(dir).await;
    let load = teal::load::Load::start(teal::load::LoadSpec {
        host: Some("app.test".into()),
        keepalive_connections: 4,
        fresh_connection_workers: 2,
        pause: Duration::from_millis(2),
        ..zero_drop(addr)
    });
    finish_more(&load, 300, Duration::from_secs(30)).await;
    let served = served::upgraded(dir, served).await;
    finish_more(&load, 300, Duration::from_secs(30)).await;
    let report = served::stop_clean(load, dir, Some(4)).await;
    served::terminated(served).await;
    let written = lines(&dir.join("access.log"));
    let n = written.len() as u64;
    assert!(
        (report.ok..=report.sent).contains(&n),
        "{n} lines for {} answered of {} sent\n{}",
        report.ok,
        report.sent,
        logs(dir)
    );
    assert!(
        written
            .iter()
            .all(|l| l["status"] == 200 && l["service"] == "web")
    );
}

/// A disk that cannot keep up never slows a request: with the log going to
/// a pipe nobody reads (its 64 KiB fill at once, then the writer blocks),
/// every request is still answered, the lines that did not fit are dropped
/// and counted on `/metrics`, and the stop ends once the pipe is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_a_stuck_writer_cannot_take_are_dropped_and_counted() {
    use std::os::unix::fs::OpenOptionsExt;

    use crate::support::load::zero_drop;

    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let fifo = dir.join("access.log");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    // Held open, never read until the end: the daemon's open does not wait.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let admin = crate::support::free_addr();
    write_config(dir);
    let toml = std::fs::read_to_string(dir.join("teal.toml")).unwrap();
    let toml = toml.replace("[proxy]\n", &format!("[proxy]\nadmin = \"{admin}\"\n"));
    std::fs::write(dir.join("teal.toml"), toml).unwrap();
    let served = Served::start(dir).await;
    teal_ok(dir, &["deploy", "web"]).await;
    let addr = served::listen_addr(dir);
    let load = teal::load::Load::start(teal::load::LoadSpec {
        host: Some("app.test".into()),
        pause: Duration::ZERO,
        max_duration: Duration::from_secs(6),
        ..zero_drop(addr)
    });
    let report = load.wait().await;
    eprintln!("{}", report.render_table());
    assert_eq!(report.failed(), 0, "{report:?}");
    assert!(report.ok > 2_000, "{report:?}");
    let dropped = eventually(Duration::from_secs(10), async || {
        let (_, page) = crate::support::get(admin, "/metrics").await;
        page.lines()
            .find(|l| l.starts_with("teal_access_log_dropped_lines_total "))
            .and_then(|l| l.split(' ').nth(1)?.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    })
    .await;
    assert!(dropped, "lines were dropped and counted\n{}", logs(dir));
    // Read the pipe to its end so the writer can finish, then stop.
    let drain = std::thread::spawn(move || {
        use std::io::Read;
        let mut reader = reader;
        let mut sink = Vec::new();
        for _ in 0..20_000 {
            match reader.read_to_end(&mut sink) {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        sink.len()
    });
    served::terminated(served).await;
    let read = drain.join().unwrap();
    assert!(read > 64 * 1024, "what the writer wrote: {read} bytes");
}
