//! TESTING.md's zero-downtime pattern against the real daemon: keep-alive and
//! new-connection load with no client retries, 20+ deploys alternating versions, a
//! broken deploy, a rollback, a slow request and a websocket spanning switches.
//! Every outcome is counted; the test fails on a single failed request.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use teal::api::wire::Outcome;
use teal::load::{Load, LoadSpec};
use tokio_tungstenite::tungstenite::Message;

const DEPLOYS: usize = 22;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_failed_requests_across_many_switches() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = demo_service("web", dir.path(), 2);
    spec.drain.timeout = Duration::from_secs(3);
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "v0").await.assert_live();

    let load = Load::start(LoadSpec {
        target: d.addr,
        host: None,
        path: "/".into(),
        keepalive_connections: 8,
        fresh_connection_workers: 2,
        max_requests: 5_000_000,
        max_duration: Duration::from_secs(300),
        request_timeout: Duration::from_secs(10),
        pause: Duration::from_millis(1),
    });

    // A slow request that spans a switch: started on v0, must finish with 200 from v0.
    let addr = d.addr;
    let mut slow = Some(tokio::spawn(
        async move { get(addr, "/slow?ms=3000").await },
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;

    // A websocket opened on v0, held across a switch.
    let stream = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{}/ws", d.addr), stream)
        .await
        .expect("websocket through the proxy");
    ws.send(Message::text("hello")).await.unwrap();
    let first = ws.next().await.unwrap().unwrap();
    assert_eq!(first.to_text().unwrap(), "v0: hello");

    let mut expected: BTreeSet<String> = BTreeSet::from(["v0".to_string()]);
    let mut live;
    for n in 1..=DEPLOYS {
        let version = format!("v{n}");
        let result = d.deploy(&spec, &version).await;
        result.assert_live();
        expected.insert(version.clone());
        live = version;

        if n == 1 {
            // The websocket stays on v0 (now the standby) and keeps working after the switch.
            ws.send(Message::text("still there")).await.unwrap();
            let reply = ws.next().await.unwrap().unwrap();
            assert_eq!(reply.to_text().unwrap(), "v0: still there");
            let (status, body) = slow.take().unwrap().await.unwrap();
            assert_eq!(status, 200, "slow request spanning the switch: {body}");
            assert_eq!(version_of(&body).as_deref(), Some("v0"));
            ws.close(None).await.unwrap();
        }
        if n >= 2 {
            // The client keeps its socket after the close handshake: the proxy must
            // still end the tunnel when the app closes, or its in-flight claim would
            // hold every later drain of that slot until the timeout.
            assert!(
                !result.text().contains("timed out"),
                "deploy {n}: {}",
                result.text()
            );
        }
        if n == 8 {
            let mut broken = spec.clone();
            broken.health.deadline = Duration::from_secs(2);
            let failed = d.deploy(&broken, "broken-9").await;
            assert_eq!(failed.outcome, Outcome::Failed, "{}", failed.text());
            assert_eq!(serving(d.addr).await.as_deref(), Some(live.as_str()));
        }
        if n == 14 {
            d.rollback("web").await.assert_live();
            live = format!("v{}", n - 1);
            assert_eq!(serving(d.addr).await.as_deref(), Some(live.as_str()));
        }
        assert_eq!(serving(d.addr).await.as_deref(), Some(live.as_str()));
    }

    let report = load.stop().await;
    d.stop().await;
    eprintln!("{}", report.render_table());
    assert!(report.sent > 1000, "the load ran: {report:?}");
    assert_eq!(report.failed(), 0, "failed requests: {report:?}");
    assert_eq!(report.ok, report.sent);
    let seen: BTreeSet<String> = report.versions.keys().cloned().collect();
    assert!(
        seen.is_subset(&expected),
        "only deployed versions answered: {seen:?}"
    );
    assert!(
        !seen.iter().any(|v| v.starts_with("broken")),
        "the broken version never served"
    );
    assert!(
        seen.len() >= DEPLOYS / 2,
        "traffic followed the switches: {seen:?}"
    );
}
