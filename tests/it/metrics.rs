//! `/metrics` on the admin listener reflects the traffic the proxy routed.

use crate::support::*;

/// The value of the sample `metric{labels}` in a Prometheus text page.
fn sample(text: &str, metric: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{metric}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
}

/// A per-slot series of service "web".
fn value(text: &str, metric: &str, slot: &str) -> Option<f64> {
    sample(text, metric, &format!("service=\"web\",slot=\"{slot}\""))
}

/// The client connections gauge in `state`.
fn connections(text: &str, state: &str) -> Option<f64> {
    sample(
        text,
        "teal_client_connections",
        &format!("state=\"{state}\""),
    )
}

/// A daemon with the admin listener, service "web" live at 1.0.0; returns the
/// admin address too.
async fn started(
    dir: &std::path::Path,
) -> (TestDaemon, std::net::SocketAddr, teal::spec::ServiceSpec) {
    started_with(dir, |_| {}).await
}

/// `started`, with the config changed by `tune` first.
async fn started_with(
    dir: &std::path::Path,
    tune: impl FnOnce(&mut teal::spec::Config),
) -> (TestDaemon, std::net::SocketAddr, teal::spec::ServiceSpec) {
    let spec = demo_service("web", dir, 1);
    let mut cfg = config(dir, vec![]);
    tune(&mut cfg);
    cfg.proxy.admin = Some("127.0.0.1:0".parse().unwrap());
    let d = TestDaemon::start(&cfg).await;
    let admin = d.daemon.admin_addr().expect("admin listener bound");
    d.deploy(&spec, "1.0.0").await.assert_live();
    (d, admin, spec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_per_slot_and_mark_the_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let (d, admin, spec) = started(dir.path()).await;
    for _ in 0..25 {
        assert_eq!(get(d.addr, "/").await.0, 200);
    }
    // A request leaves the in-flight count just after its last byte is
    // written, so the client can scrape before the proxy's worker got there:
    // wait (bounded) for the count to settle.
    let mut text = String::new();
    for _ in 0..100 {
        let (status, page) = get(admin, "/metrics").await;
        assert_eq!(status, 200);
        text = page;
        if value(&text, "teal_in_flight", "blue") == Some(0.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        value(&text, "teal_requests_total", "blue"),
        Some(25.0),
        "{text}"
    );
    assert_eq!(value(&text, "teal_responses_5xx_total", "blue"), Some(0.0));
    assert_eq!(value(&text, "teal_slot_live", "blue"), Some(1.0));
    assert_eq!(value(&text, "teal_slot_live", "green"), Some(0.0));
    assert_eq!(value(&text, "teal_in_flight", "blue"), Some(0.0), "{text}");

    d.deploy(&spec, "2.0.0").await.assert_live();
    for _ in 0..7 {
        assert_eq!(get(d.addr, "/").await.0, 200);
    }
    let (_, text) = get(admin, "/metrics").await;
    assert_eq!(
        value(&text, "teal_requests_total", "green"),
        Some(7.0),
        "{text}"
    );
    assert_eq!(value(&text, "teal_slot_live", "green"), Some(1.0));
    assert_eq!(get(admin, "/other").await.0, 404);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_client_connections_active_then_parked() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let (d, admin, _spec) = started(dir.path()).await;
    // Connections of earlier requests (if any) close on their own.
    let mut quiet = false;
    for _ in 0..100 {
        let (_, text) = get(admin, "/metrics").await;
        if connections(&text, "active") == Some(0.0) && connections(&text, "parked") == Some(0.0) {
            quiet = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(quiet, "client connections never went back to none");
    // One kept-alive client connection: active while fresh, parked once idle.
    let mut client = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = client.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let (_, text) = get(admin, "/metrics").await;
    assert_eq!(connections(&text, "active"), Some(1.0), "{text}");
    assert_eq!(connections(&text, "parked"), Some(0.0), "{text}");
    let mut parked = false;
    for _ in 0..100 {
        let (_, text) = get(admin, "/metrics").await;
        if connections(&text, "parked") == Some(1.0) {
            assert_eq!(connections(&text, "active"), Some(0.0), "{text}");
            parked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(parked, "the idle connection was never reported parked");
    drop(client);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_client_errors_apart_from_upstream_failures() {
    use crate::support::proxy::{raw_exchange, read_to_close};
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let (d, admin, _spec) = started(dir.path()).await;
    // A body cut short (the client stops sending), and a head that is not HTTP.
    let mut cut = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    cut.write_all(b"POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 100\r\n\r\nonly ten b")
        .await
        .unwrap();
    cut.shutdown().await.unwrap();
    let cut = read_to_close(&mut cut).await;
    assert!(cut.is_empty() || cut.starts_with("HTTP/1.1 400"), "{cut}");
    let malformed = raw_exchange(d.addr, b"GET / HTTP/1.1\r\nHost: web\r\nno colon\r\n\r\n").await;
    assert!(malformed.starts_with("HTTP/1.1 400"), "{malformed}");
    let mut text = String::new();
    let counted = eventually(std::time::Duration::from_secs(10), async || {
        text = get(admin, "/metrics").await.1;
        text.contains("\nteal_malformed_requests_total 1\n")
    })
    .await;
    assert!(counted, "{text}");
    assert_eq!(
        value(&text, "teal_client_errors_total", "blue"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "teal_upstream_failures_total", "blue"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(value(&text, "teal_responses_5xx_total", "blue"), Some(0.0));
    d.stop().await;
}

/// `[proxy] body_timeout` reaches the daemon's proxy: a client that stops
/// sending its body gets 408 once it passed, counted as a client error and
/// not as an upstream failure. nginx answers 408 after client_body_timeout
/// and does not count it against the upstream either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_a_408_and_a_client_error() {
    use crate::support::proxy::read_to_close;
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let (d, admin, _spec) = started_with(dir.path(), |cfg| {
        cfg.proxy.body_timeout = Some(std::time::Duration::from_secs(1));
    })
    .await;
    let mut stalled = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    stalled
        .write_all(b"POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 1000\r\n\r\nab")
        .await
        .unwrap();
    let reply = read_to_close(&mut stalled).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    let text = get(admin, "/metrics").await.1;
    assert_eq!(
        value(&text, "teal_client_errors_total", "blue"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "teal_upstream_failures_total", "blue"),
        Some(0.0),
        "{text}"
    );
    d.stop().await;
}
