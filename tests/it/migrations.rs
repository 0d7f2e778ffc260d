//! The migrations example (`examples/migrations/`) end to end: its own
//! `teal.toml`, a real SQLite file shared by both slots, the Python app and its
//! migrations run as hooks, under load. deploy v1 → v2 without its expand fails
//! the health gate → v2 (expand) → roll back to v1, which still reads and writes →
//! v2 again → v3 contracts what only v1 needed → roll back to v2, which still works.

use std::path::Path;
use std::time::Duration;

use crate::support::hooks::*;
use crate::support::load::*;
use crate::support::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use teal::spec::ServiceSpec;
use teal::wire::Outcome;

fn python3() -> bool {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The example's service, as its `teal.toml` says, with the database in `dir`
/// and the preview listener on port 0.
fn example(dir: &Path) -> ServiceSpec {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/migrations/teal.toml");
    let config = teal::config::load(&file).expect("the example's teal.toml is valid");
    let mut spec = config.services["notes"].clone();
    spec.env.insert(
        "NOTES_DB".into(),
        dir.join("notes.db").display().to_string(),
    );
    spec.preview = Some("127.0.0.1:0".parse().unwrap());
    spec.health.interval = Duration::from_millis(100);
    spec.health.deadline = Duration::from_secs(10);
    // The example watches for 10 s; the story is the same with a short window.
    if let Some(verify) = spec.verify.as_mut() {
        verify.window = Duration::from_millis(300);
    }
    spec
}

async fn request(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, "localhost")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

async fn notes(addr: std::net::SocketAddr) -> (String, Vec<Value>) {
    let (status, body) = request(addr, "GET", "/", "").await;
    assert_eq!(status, 200, "{body}");
    (
        body["version"].as_str().unwrap().to_string(),
        body["notes"].as_array().unwrap().clone(),
    )
}

async fn post(addr: std::net::SocketAddr, path: &str, text: &str) {
    let (status, body) = request(addr, "POST", path, text).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expand_deploy_rollback_contract() {
    if !require("python3", python3()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = example(dir.path());
    let d = TestDaemon::start(&config(dir.path(), vec![])).await;
    let addr = d.addr;

    // v1: its expand creates the table.
    let v1 = d.deploy(&spec, "1.0.0").await;
    v1.assert_live();
    assert_eq!(
        hook_lines(&v1, "pre_deploy"),
        ["expand 1 (create notes): done"]
    );
    post(addr, "/notes", "written by 1.0.0").await;
    let load = steady_load(addr, "/");
    finish_more(&load, 100, Duration::from_secs(60)).await;

    // v2 without its expand never passes the health gate; production untouched.
    let mut no_hooks = spec.clone();
    no_hooks.hooks = Default::default();
    // Long enough for python to start on a busy machine: the last answer must be
    // the app's own 503, not a refused connection.
    no_hooks.health.deadline = Duration::from_secs(8);
    let failed = d.deploy(&no_hooks, "2.0.0").await;
    assert_eq!(failed.outcome, Outcome::Failed, "{}", failed.text());
    assert!(
        failed.message.contains("column notes.author is missing"),
        "{}",
        failed.message
    );
    assert_eq!(notes(addr).await.0, "1.0.0");

    // v2 with it: the column appears before v2 starts, v1 keeps serving meanwhile.
    let v2 = d.deploy(&spec, "2.0.0").await;
    v2.assert_live();
    assert_eq!(
        hook_lines(&v2, "pre_deploy"),
        [
            "expand 1 (create notes): already done",
            "expand 2 (notes.author): done"
        ]
    );
    assert_eq!(
        hook_lines(&v2, "post_retire"),
        [] as [String; 0],
        "nothing to contract yet"
    );
    post(addr, "/notes?author=ada", "written by 2.0.0").await;
    let (version, list) = notes(addr).await;
    assert_eq!(version, "2.0.0");
    assert_eq!(list[0]["author"], "anonymous");
    assert_eq!(list[1]["author"], "ada");

    // Roll back: v1 reads and writes the expanded schema.
    d.rollback("notes").await.assert_live();
    post(addr, "/notes", "written by 1.0.0 after the rollback").await;
    let (version, list) = notes(addr).await;
    assert_eq!(version, "1.0.0");
    assert_eq!(list.len(), 3);
    assert!(
        list.iter().all(|n| n.get("author").is_none()),
        "1.x knows no authors"
    );

    // v2 again: its expand is a no-op, and it reads what v1 wrote meanwhile.
    let again = d.deploy(&spec, "2.0.0").await;
    again.assert_live();
    assert!(
        hook_lines(&again, "pre_deploy")
            .iter()
            .all(|l| l.ends_with("already done"))
    );
    let (_, list) = notes(addr).await;
    assert_eq!(list[2]["author"], "anonymous");

    // v3: once v2 is the previous version, nothing older can come back: contract.
    let v3 = d.deploy(&spec, "3.0.0").await;
    v3.assert_live();
    assert_eq!(
        hook_lines(&v3, "post_retire"),
        ["contract 2 (notes.author): done"]
    );
    let (_, schema) = request(addr, "GET", "/schema", "").await;
    assert_eq!(
        schema["columns"]["author"], 1,
        "author is NOT NULL now: {schema}"
    );
    post(addr, "/notes?author=grace", "written by 3.0.0").await;
    let (version, list) = notes(addr).await;
    assert_eq!(version, "3.0.0");
    assert_eq!(list.len(), 4);
    assert!(list.iter().all(|n| n["author"].is_string()));

    // And the rollback that remains (to v2) still works on the contracted schema.
    d.rollback("notes").await.assert_live();
    post(
        addr,
        "/notes?author=linus",
        "written by 2.0.0 after the contract",
    )
    .await;
    assert_eq!(notes(addr).await.0, "2.0.0");

    finish_more(&load, 100, Duration::from_secs(60)).await;
    let report = load.stop().await;
    assert_eq!(report.failed(), 0, "{}", report.render_table());
    d.stop().await;
}
