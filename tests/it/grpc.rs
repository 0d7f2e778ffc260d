//! gRPC through teal: a real grpcio app (`tests/apps/grpc_app.py`) behind the
//! builtin proxy with `protocol = "h2c"` and the standard gRPC health check,
//! under gRPC load (a few HTTP/2 connections, many calls, no retries):
//! deploys and a rollback lose no call, a server stream spanning a switch
//! ends on the slot it started on, failing calls (`grpc-status` in trailers)
//! count in a verify window, and a NOT_SERVING app fails its health gate.

use std::time::Duration;

use crate::support::grpc::*;
use crate::support::hooks::last_entry;
use crate::support::*;
use teal::spec::{Inconclusive, VerifySpec};
use teal::wire::Outcome;

/// Deploys under load. Each one starts a Python process (grpcio's import
/// alone takes a few hundred ms on this machine).
const DEPLOYS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_survive_deploys_and_a_rollback() {
    if !require_grpcio() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = grpc_service("rpc", dir.path());
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "v1").await.assert_live();
    let load = GrpcLoad::start(d.addr, 3, 4).await;
    let tally = deploys_and_a_rollback(&d, &spec, load, DEPLOYS).await;
    assert_eq!(tally.failed, 0, "failed calls: {tally:?}");
    assert!(tally.ok > 1_000, "{tally:?}");
    let expected: Vec<String> = (1..=DEPLOYS + 1).map(|n| format!("v{n}")).collect();
    assert!(
        tally.versions.keys().all(|v| expected.contains(v)),
        "{tally:?}"
    );
    let mut conn = connect(d.addr).await;
    let now = call(&mut conn, "Version", b"").await.expect("a call");
    assert_eq!(now[0], format!("v{DEPLOYS}"), "rolled back");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stream_spanning_a_switch_ends_on_its_slot() {
    if !require_grpcio() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = grpc_service("rpc", dir.path());
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "v1").await.assert_live();
    let mut conn = connect(d.addr).await;
    let stream = {
        let mut conn = conn.clone();
        tokio::spawn(async move { call(&mut conn, "Count", b"12 250").await })
    };
    // The stream has begun (its first message is sent at once).
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.deploy(&spec, "v2").await.assert_live();
    let after = call(&mut conn, "Version", b"").await.expect("a call");
    assert_eq!(after[0], "v2");
    let messages = stream.await.unwrap().expect("the stream ends with OK");
    let expected: Vec<String> = (0..12).map(|i| format!("v1 {i}")).collect();
    let got: Vec<String> = messages
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    assert_eq!(got, expected);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_grpc_calls_count_in_the_verify_window() {
    if !require_grpcio() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut spec = grpc_service("rpc", dir.path());
    spec.verify = Some(VerifySpec {
        window: Duration::from_secs(120),
        max_error_rate: 0.05,
        max_p99: None,
        min_requests: 20,
        on_inconclusive: Inconclusive::Promote,
    });
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "v1").await.assert_live();
    let load = GrpcLoad::start(d.addr, 2, 4).await;
    load.finish_more(100, Duration::from_secs(30)).await;
    // Healthy (its health service says SERVING), but every call fails with
    // grpc-status 14 (UNAVAILABLE), an HTTP 200 answer.
    let result = d.deploy(&spec, "v2-failing").await;
    assert_eq!(result.outcome, Outcome::Failed, "{}", result.text());
    assert!(
        result.message.starts_with("verify failed: error rate"),
        "{}",
        result.message
    );
    load.finish_more(200, Duration::from_secs(30)).await;
    let tally = load.stop().await;
    let entry = last_entry(&d, "rpc").await;
    let verify = entry.verify.expect("a verify record");
    eprintln!("{verify:?}\n{tally:?}");
    assert!(tally.failed > 0, "the failing version was seen: {tally:?}");
    assert!(
        tally.errors.iter().all(|e| e == "grpc-status 14"),
        "{tally:?}"
    );
    assert_eq!(tally.failed, verify.errors, "{verify:?} {tally:?}");
    assert_eq!(verify.upstream_failures, 0);
    let mut conn = connect(d.addr).await;
    let now = call(&mut conn, "Version", b"").await.expect("a call");
    assert_eq!(now[0], "v1", "production switched back");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_serving_grpc_app_fails_its_health_gate() {
    if !require_grpcio() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut spec = grpc_service("rpc", dir.path());
    d_deadline(&mut spec);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "v1").await.assert_live();
    let result = d.deploy(&spec, "v2-notserving").await;
    assert_eq!(result.outcome, Outcome::Failed, "{}", result.text());
    assert!(
        result
            .message
            .contains("gRPC health check of \"\": NOT_SERVING (2)"),
        "{}",
        result.message
    );
    let mut conn = connect(d.addr).await;
    let now = call(&mut conn, "Version", b"").await.expect("a call");
    assert_eq!(now[0], "v1", "production untouched");
    d.stop().await;
}

/// A deadline long enough for Python to start, short enough to fail fast.
fn d_deadline(spec: &mut teal::spec::ServiceSpec) {
    spec.health.deadline = Duration::from_secs(8);
}

/// An HTTP/1.1 client's call is translated to HTTP/2 (trailers included,
/// since it asked with `te: trailers`); an upgrade cannot be carried over
/// HTTP/2 to the app and gets 501.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_calls_are_translated_and_upgrades_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if !require_grpcio() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = grpc_service("rpc", dir.path());
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "v1").await.assert_live();

    let stream = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    assert_eq!(http1_versions(stream, 3).await, ["v1"; 3]);

    let mut raw = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    raw.write_all(
        b"GET /chat HTTP/1.1\r\nHost: grpc.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = vec![0; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), raw.read(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 501"), "{answer}");
    assert!(answer.contains("h2c"), "{answer}");
    d.stop().await;
}
