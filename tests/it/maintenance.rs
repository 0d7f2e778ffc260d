//! `teal maintenance` and `teal pause` with the real binary: `teal serve` as
//! a child process, the demo app logging a line per request (so "nothing
//! reached the app" is read from its own log), requests on both HTTP paths of
//! the builtin proxy (a keep-alive HTTP/1.1 GET takes the lean one, an
//! HTTP/1.0 request hyper's), across a daemon restart, `teal serve --upgrade`
//! and a deploy; then the nginx router, which renders maintenance and refuses
//! a pause.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::served::{Served, blocking, logs, run, run_ok, teal_ok, terminated, upgraded};
use crate::support::*;

/// `dir/teal.toml`: the demo app (logging each request) on hosts a.test and
/// b.test, behind `router` on `listen`.
fn write_config(dir: &Path, listen: SocketAddr, router: &str) {
    let text = format!(
        r#"state_dir = "state"

[proxy]
listen = "{listen}"
router = "{router}"

[services.web]
command = ["{TEAL}", "demo-app", "--port", "{{port}}", "--app-version", "{{version}}", "--log-requests"]
version = "1.0.0"
hosts = ["a.test", "b.test"]

[services.web.health]
interval = "50ms"
deadline = "10s"

[services.web.drain]
timeout = "2s"
"#
    );
    std::fs::write(dir.join("teal.toml"), text).unwrap();
}

/// What one request got: status, headers (lowercased names), body.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One request on a new connection, read to its end: `version` "1.1" (the
/// lean path; `Connection: close` so the end is the close) or "1.0" (hyper's).
async fn request(addr: SocketAddr, version: &str, host: &str, path: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!("GET {path} HTTP/{version}\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(90), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 90 s")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// `teal status --json`'s one service.
fn service_status(dir: &Path) -> serde_json::Value {
    let out = run_ok(dir, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["services"][0].clone()
}

/// The daemon in `dir` (builtin router on port 0), 1.0.0 deployed; returns it
/// and its production address.
async fn builtin_daemon(dir: &Path) -> (Served, SocketAddr) {
    write_config(dir, "127.0.0.1:0".parse().unwrap(), "builtin");
    let daemon = Served::start(dir).await;
    teal_ok(dir, &["deploy", "web"]).await;
    let addr = crate::support::served::listen_addr(dir);
    (daemon, addr)
}

/// Whether the app's log shows a request for `path` (a unique path per
/// probe, so nothing else can have asked for it).
fn app_saw(dir: &Path, path: &str) -> bool {
    logs(dir)
        .lines()
        .any(|l| l.ends_with(&format!(" GET {path}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_answers_503_per_host_across_a_restart_and_a_deploy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (daemon, addr) = builtin_daemon(dir).await;
    assert_eq!(request(addr, "1.1", "a.test", "/").await.status, 200);

    // Bad input changes nothing.
    for args in [
        &["maintenance", "nope", "on"][..],
        &["maintenance", "web", "off", "--message", "x"],
        &["maintenance", "web", "on", "--hostname", "c.test"],
        &["maintenance", "web", "sideways"],
    ] {
        let out = blocking({
            let dir = dir.to_path_buf();
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            move || run(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await;
        assert!(!out.status.success(), "teal {args:?} fails");
    }
    assert!(service_status(dir).get("maintenance").is_none());
    assert_eq!(request(addr, "1.1", "a.test", "/").await.status, 200);

    teal_ok(
        dir,
        &["maintenance", "web", "on", "--message", "back at five"],
    )
    .await;
    for (version, path) in [("1.1", "/maint-lean"), ("1.0", "/maint-hyper")] {
        let answer = request(addr, version, "a.test", path).await;
        assert_eq!(answer.status, 503, "{answer:?}");
        assert_eq!(answer.header("retry-after"), Some("60"), "{answer:?}");
        assert_eq!(answer.body, "back at five\n");
        assert!(!app_saw(dir, path), "the app got no request");
    }
    let human = String::from_utf8(run_ok(dir, &["status"]).stdout).unwrap();
    assert!(human.contains("maintenance since"), "{human}");
    assert!(human.contains("back at five"), "{human}");
    let history = String::from_utf8(run_ok(dir, &["history", "web"]).stdout).unwrap();
    assert!(history.contains("maintenance_on"), "{history}");

    // A restart keeps it.
    terminated(daemon).await;
    let daemon = Served::start(dir).await;
    let addr = crate::support::served::listen_addr(dir);
    let answer = request(addr, "1.1", "b.test", "/after-restart").await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (503, "back at five\n")
    );
    let status = service_status(dir);
    assert_eq!(status["maintenance"][0]["message"], "back at five");
    // So does `teal serve --upgrade` (same listening sockets).
    let daemon = upgraded(dir, daemon).await;
    let answer = request(addr, "1.0", "a.test", "/after-upgrade").await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (503, "back at five\n")
    );
    assert!(!app_saw(dir, "/after-restart") && !app_saw(dir, "/after-upgrade"));

    // Off, then one host only; a deploy goes through it.
    teal_ok(dir, &["maintenance", "web", "off"]).await;
    assert_eq!(request(addr, "1.1", "b.test", "/").await.status, 200);
    teal_ok(dir, &["maintenance", "web", "on", "--hostname", "b.test"]).await;
    let answer = request(addr, "1.0", "b.test", "/only-b").await;
    assert_eq!(answer.status, 503);
    assert!(
        answer.body.contains("web is down for maintenance"),
        "{answer:?}"
    );
    assert!(!app_saw(dir, "/only-b"));
    assert_eq!(request(addr, "1.1", "a.test", "/").await.status, 200);
    teal_ok(dir, &["deploy", "web", "--version", "2.0.0"]).await;
    assert_eq!(request(addr, "1.1", "b.test", "/").await.status, 503);
    let answer = request(addr, "1.1", "a.test", "/").await;
    assert_eq!(version_of(&answer.body).as_deref(), Some("2.0.0"));
    teal_ok(dir, &["maintenance", "web", "off", "--hostname", "b.test"]).await;
    let answer = request(addr, "1.1", "b.test", "/").await;
    assert_eq!(version_of(&answer.body).as_deref(), Some("2.0.0"));
    assert!(service_status(dir).get("maintenance").is_none());
    terminated(daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_holds_requests_until_resume_or_their_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (daemon, addr) = builtin_daemon(dir).await;

    teal_ok(dir, &["pause", "web", "--timeout", "60s"]).await;
    let lean = tokio::spawn(request(addr, "1.1", "a.test", "/held-lean"));
    let hyper = tokio::spawn(request(addr, "1.0", "b.test", "/held-hyper"));
    // Held, not answered, and nothing reached the app.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!lean.is_finished() && !hyper.is_finished());
    assert!(!app_saw(dir, "/held-lean") && !app_saw(dir, "/held-hyper"));
    let status = service_status(dir);
    assert_eq!(status["pause"][0]["timeout_ms"], 60_000);
    // A deploy while paused: the new slot is health-checked and switched.
    teal_ok(dir, &["deploy", "web", "--version", "2.0.0"]).await;
    assert!(!lean.is_finished() && !hyper.is_finished());
    teal_ok(dir, &["resume", "web"]).await;
    for held in [lean, hyper] {
        let answer = held.await.unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(version_of(&answer.body).as_deref(), Some("2.0.0"));
    }
    assert!(app_saw(dir, "/held-lean") && app_saw(dir, "/held-hyper"));

    // A request whose time runs out gets 503 with Retry-After.
    teal_ok(
        dir,
        &["pause", "web", "--timeout", "300ms", "--hostname", "a.test"],
    )
    .await;
    let answer = request(addr, "1.1", "a.test", "/too-late").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.header("retry-after"), Some("5"));
    assert!(!app_saw(dir, "/too-late"));
    assert_eq!(request(addr, "1.1", "b.test", "/").await.status, 200);

    // The pause survives a restart, and shows in status.
    terminated(daemon).await;
    let daemon = Served::start(dir).await;
    let addr = crate::support::served::listen_addr(dir);
    let human = String::from_utf8(run_ok(dir, &["status"]).stdout).unwrap();
    assert!(human.contains("paused (hostname a.test) since"), "{human}");
    let answer = request(addr, "1.0", "a.test", "/too-late-again").await;
    assert_eq!(answer.status, 503);
    teal_ok(dir, &["resume", "web"]).await;
    assert_eq!(request(addr, "1.1", "a.test", "/").await.status, 200);
    let history = String::from_utf8(run_ok(dir, &["history", "web"]).stdout).unwrap();
    assert!(
        history.contains("pause") && history.contains("resume"),
        "{history}"
    );
    terminated(daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_renders_maintenance_and_refuses_a_pause() {
    if !nginx::required() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let listen = nginx::free_addr();
    write_config(dir, listen, "nginx");
    let daemon = Served::start(dir).await;
    teal_ok(dir, &["deploy", "web"]).await;
    assert_eq!(request(listen, "1.1", "a.test", "/").await.status, 200);

    teal_ok(
        dir,
        &[
            "maintenance",
            "web",
            "on",
            "--message",
            "upgrading the database",
        ],
    )
    .await;
    let answer = request(listen, "1.1", "a.test", "/nginx-maint").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.header("retry-after"), Some("60"), "{answer:?}");
    assert_eq!(answer.body, "upgrading the database\n");
    assert!(!app_saw(dir, "/nginx-maint"));
    // A message nginx could misread is refused, and nothing changes.
    let out = run(dir, &["maintenance", "web", "on", "--message", "costs $5"]);
    assert!(!out.status.success());
    assert_eq!(
        service_status(dir)["maintenance"][0]["message"],
        "upgrading the database"
    );

    // Per host; a deploy keeps it.
    teal_ok(dir, &["maintenance", "web", "off"]).await;
    teal_ok(dir, &["maintenance", "web", "on", "--hostname", "b.test"]).await;
    teal_ok(dir, &["deploy", "web", "--version", "2.0.0"]).await;
    assert_eq!(request(listen, "1.1", "b.test", "/").await.status, 503);
    let answer = request(listen, "1.1", "a.test", "/").await;
    assert_eq!(version_of(&answer.body).as_deref(), Some("2.0.0"));

    // A pause is builtin-only: an error, nothing recorded.
    let out = run(dir, &["pause", "web"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("builtin"), "{stderr}");
    assert!(service_status(dir).get("pause").is_none());
    teal_ok(dir, &["maintenance", "web", "off"]).await;
    assert_eq!(request(listen, "1.1", "b.test", "/").await.status, 200);
    terminated(daemon).await;
}

/// Maintenance without `--message` answers with the service's own 503 page
/// (`error_pages`) on both HTTP paths, with `Retry-After`; a `--message`
/// wins over the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_serves_the_503_page_unless_a_message_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("pages");
    std::fs::create_dir(&pages).unwrap();
    std::fs::write(pages.join("503.html"), "<h1>back soon</h1>\n").unwrap();
    write_config(dir.path(), "127.0.0.1:0".parse().unwrap(), "builtin");
    let config = dir.path().join("teal.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "hosts = [\"a.test\", \"b.test\"]\n",
        "hosts = [\"a.test\", \"b.test\"]\nerror_pages = \"pages\"\n",
    );
    std::fs::write(&config, text).unwrap();
    let daemon = Served::start(dir.path()).await;
    teal_ok(dir.path(), &["deploy", "web"]).await;
    let addr = crate::support::served::listen_addr(dir.path());

    teal_ok(dir.path(), &["maintenance", "web", "on"]).await;
    for version in ["1.1", "1.0"] {
        let answer = request(addr, version, "a.test", "/page").await;
        assert_eq!(answer.status, 503, "{answer:?}");
        assert_eq!(answer.body, "<h1>back soon</h1>\n", "{answer:?}");
        assert_eq!(
            answer.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(answer.header("retry-after").is_some(), "{answer:?}");
    }
    teal_ok(
        dir.path(),
        &[
            "maintenance",
            "web",
            "on",
            "--message",
            "upgrading the database",
        ],
    )
    .await;
    for version in ["1.1", "1.0"] {
        let answer = request(addr, version, "a.test", "/message").await;
        assert_eq!(answer.status, 503, "{answer:?}");
        assert_eq!(answer.body, "upgrading the database\n", "{answer:?}");
    }
    assert!(!app_saw(dir.path(), "/page") && !app_saw(dir.path(), "/message"));
    terminated(daemon).await;
}
