//! TESTING.md's zero-downtime pattern with containers on the real engine: load
//! with keep-alive and new connections and no client retries, 22 deploys
//! alternating versions and images, a broken version and an image that crashes at
//! start (both fail with production untouched), a rollback, a slow request and a
//! websocket spanning a switch. The test fails on a single failed request.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::docker::*;
use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use teal::api::wire::Outcome;
use teal::load::{Load, LoadSpec};
use tokio_tungstenite::tungstenite::Message;

const DEPLOYS: usize = 22;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_failed_requests_across_many_container_switches() {
    let Some(docker) = engine().await else { return };
    let name = "dkt-zero";
    remove_containers(&docker, name).await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = docker_service(name, dir.path(), APP_1, 2);
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
        max_duration: Duration::from_secs(400),
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
        // Alternate builds too, so every switch also changes the image ID.
        let mut next = spec.clone();
        docker_spec(&mut next).image = if n % 2 == 0 { APP_1 } else { APP_2 }.into();
        d.deploy(&next, &version).await.assert_live();
        expected.insert(version.clone());
        live = version;

        if n == 1 {
            ws.send(Message::text("still there")).await.unwrap();
            let reply = ws.next().await.unwrap().unwrap();
            assert_eq!(reply.to_text().unwrap(), "v0: still there");
            let (status, body) = slow.take().unwrap().await.unwrap();
            assert_eq!(status, 200, "slow request spanning the switch: {body}");
            assert_eq!(version_of(&body).as_deref(), Some("v0"));
            ws.close(None).await.unwrap();
        }
        if n == 8 {
            let mut broken = next.clone();
            broken.health.deadline = Duration::from_secs(3);
            let failed = d.deploy(&broken, "broken-9").await;
            assert_eq!(failed.outcome, Outcome::Failed, "{}", failed.text());
            assert!(failed.message.contains("HTTP 500"), "{}", failed.message);
            assert_eq!(serving(d.addr).await.as_deref(), Some(live.as_str()));
        }
        if n == 11 {
            let mut crash = next.clone();
            docker_spec(&mut crash).image = CRASH.into();
            docker_spec(&mut crash).command = None;
            let failed = d.deploy(&crash, "crash-11").await;
            assert_eq!(failed.outcome, Outcome::Failed, "{}", failed.text());
            assert!(failed.message.contains("exit code 2"), "{}", failed.message);
            assert_eq!(serving(d.addr).await.as_deref(), Some(live.as_str()));
        }
        if n == 14 {
            d.rollback(name).await.assert_live();
            live = format!("v{}", n - 1);
        }
        assert_eq!(serving(d.addr).await.as_deref(), Some(live.as_str()));
    }

    let report = load.stop().await;
    d.stop().await;
    remove_containers(&docker, name).await;
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
        seen.len() >= DEPLOYS / 2,
        "traffic followed the switches: {seen:?}"
    );
}
