//! The rule for upgraded connections at a drain, through the daemon (process
//! runtime, builtin proxy, the demo app's websocket echo): a websocket on the
//! old slot keeps working across the switch and until the drain deadline
//! (`drain.timeout` after the drain started), then the proxy sends both sides
//! a close frame 1001 "going away", whether `keep_previous` keeps the slot
//! warm or stops it. Replacing a standby (here a staged slot serving a
//! websocket on the preview listener) drains it by the same rule.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use teal::spec::ServiceSpec;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::proxy::ws_exchange;
use crate::support::*;

const DRAIN: Duration = Duration::from_secs(2);

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn open_ws(addr: std::net::SocketAddr) -> Ws {
    let stream = TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream)
        .await
        .expect("websocket through the proxy")
        .0
}

/// Waits for the proxy's close frame and checks it says 1001.
async fn expect_going_away(ws: &mut Ws) {
    let got = tokio::time::timeout(Duration::from_secs(30), ws.next()).await;
    let Ok(Some(Ok(Message::Close(Some(frame))))) = got else {
        panic!("a close frame, got {got:?}");
    };
    assert_eq!(frame.code, CloseCode::Away, "{frame:?}");
    assert_eq!(frame.reason.as_str(), "going away");
}

/// The demo app says each close frame it got in its log.
fn app_saw_going_away(state: &Path, slot: &str) -> bool {
    let log = state.join(format!("logs/web/{slot}-0.log"));
    std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("websocket closed by the peer: 1001 going away")
}

async fn across_a_deploy(keep_previous: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut spec: ServiceSpec = demo_service("web", dir.path(), 1);
    spec.drain.timeout = DRAIN;
    spec.drain.keep_previous = keep_previous;
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "v0").await.assert_live();
    let mut ws = open_ws(d.addr).await;
    assert_eq!(ws_exchange(&mut ws, "hello").await, "v0: hello");

    let asked = Instant::now();
    let stream = d
        .client
        .deploy(&deploy_request(&spec, "v1"))
        .await
        .expect("deploy accepted");
    let deploy = tokio::spawn(ActionResult::collect(stream));
    assert!(
        eventually(Duration::from_secs(60), async || {
            serving(d.addr).await.as_deref() == Some("v1")
        })
        .await,
        "v1 went live"
    );
    // The drain has started (or is about to): the websocket still works.
    assert_eq!(ws_exchange(&mut ws, "still there").await, "v0: still there");
    expect_going_away(&mut ws).await;
    // The drain started after the switch, which came after the request.
    assert!(
        asked.elapsed() >= DRAIN,
        "not before the deadline: {:?}",
        asked.elapsed()
    );
    let result = deploy.await.unwrap();
    result.assert_live();
    assert!(
        result.text().contains("closed 1 upgraded connection(s)"),
        "{}",
        result.text()
    );
    assert!(
        eventually(Duration::from_secs(10), async || app_saw_going_away(
            &dir.path().join("state"),
            "blue"
        ))
        .await,
        "the app got the close frame 1001"
    );
    let status = d.status().await;
    let blue = &status.services[0].slots.blue;
    let expected = if keep_previous { "standby" } else { "stopped" };
    assert_eq!(blue.state.to_string(), expected);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_gets_1001_at_the_deadline_when_the_old_slot_is_kept() {
    across_a_deploy(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_gets_1001_at_the_deadline_when_the_old_slot_is_stopped() {
    across_a_deploy(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_standby_that_holds_a_websocket_follows_the_same_rule() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = demo_service("web", dir.path(), 1);
    spec.drain.timeout = DRAIN;
    spec.preview = Some(free_addr());
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    d.deploy(&spec, "v0").await.assert_live();
    // v1 staged on green, served on the preview listener only.
    let staged = d.deploy_with(&spec, "v1", false).await;
    assert!(staged.text().contains("preview"), "{}", staged.text());
    let mut ws = open_ws(spec.preview.unwrap()).await;
    assert_eq!(ws_exchange(&mut ws, "hi").await, "v1: hi");

    // v2 goes to green too: the staged v1 is drained and stopped first. v2's
    // start empties green's log, so it is watched from now on.
    let state = dir.path().join("state");
    let watcher = tokio::spawn(async move {
        let since = Instant::now();
        while since.elapsed() < Duration::from_secs(30) {
            if app_saw_going_away(&state, "green") {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    });
    let asked = Instant::now();
    let stream = d
        .client
        .deploy(&deploy_request(&spec, "v2"))
        .await
        .expect("deploy accepted");
    let deploy = tokio::spawn(ActionResult::collect(stream));
    expect_going_away(&mut ws).await;
    assert!(
        asked.elapsed() >= DRAIN,
        "not before the deadline: {:?}",
        asked.elapsed()
    );
    let result = deploy.await.unwrap();
    result.assert_live();
    assert!(
        result.text().contains("drain of green timed out"),
        "{}",
        result.text()
    );
    assert!(
        watcher.await.unwrap(),
        "the staged app got the close frame 1001"
    );
    d.stop().await;
}
