//! TLS through the real daemon (process runtime, builtin proxy): a service
//! with its own certificate files is served on the TLS listener, plain HTTP
//! for it is redirected, and keep-alive and new-connection TLS clients see
//! no failed request and no closed connection across deploys and a rollback
//! (the certificate stays installed with every change of routes); across
//! `teal serve --upgrade` the TLS listener moves to the new daemon; `teal
//! status` says where it is.

use std::sync::Arc;
use std::time::Duration;

use crate::support::proxy::{Conn, unused_addr};
use crate::support::tls::{TestCa, TlsWeb, assert_redirected};
use crate::support::tls_load::TlsLoad;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_clients_see_no_failure_across_deploys_and_a_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(TestCa::new());
    let TlsWeb {
        spec,
        config,
        tls_addr,
        ..
    } = TlsWeb::new(dir.path(), &ca, "web.test");
    let d = TestDaemon::start(&config).await;
    d.deploy(&spec, "1.0.0").await.assert_live();

    // Plain HTTP for the TLS service: 308 to https on the TLS port.
    assert_redirected(d.addr, "web.test", tls_addr.port()).await;

    // Four keep-alive clients and one opening a connection per request.
    let load = TlsLoad::start(&ca.root, tls_addr, "web.test", 4, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;

    for (i, version) in ["2.0.0", "1.0.0", "2.0.0", "1.0.0", "2.0.0"]
        .iter()
        .enumerate()
    {
        let result = d.deploy(&spec, version).await;
        result.assert_live();
        eprintln!("deploy {i}: {version} live");
    }
    d.rollback("web").await.assert_live();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts = load.finish().await;
    assert_eq!(counts.failed, 0, "no failed request");
    assert_eq!(
        counts.reconnects, 0,
        "every keep-alive client kept its connection"
    );
    assert!(counts.ok > 100, "the load ran: {counts:?}");

    // The version the rollback made live answers over TLS.
    let tls = ca
        .connect(tls_addr, "web.test", &[b"http/1.1"])
        .await
        .unwrap();
    let mut conn = Conn::over(tls).await.unwrap();
    let reply = conn.get("web.test", "/").await.unwrap();
    assert_eq!(
        version_of(&reply.body).as_deref(),
        Some("1.0.0"),
        "{}",
        reply.body
    );
    d.stop().await;
}

/// `teal serve --upgrade` with the real binary and a TLS service: the new
/// daemon takes the TLS listening socket too and serves the same
/// certificate on the same address, and a TLS client opening a connection
/// per request across the upgrade sees no failure (a handshake in progress
/// at the hand-over is completed and served by the old daemon).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_hands_the_tls_listener_over() {
    use crate::support::served::{Served, logs, teal_ok, terminated, upgraded};
    use crate::support::tls::served_cert;
    use crate::support::tls::tls_web_toml;

    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(TestCa::new());
    let leaf = ca.leaf(dir.path(), "web", &["web.test"]);
    let tls_addr = unused_addr();
    let service = tls_web_toml("127.0.0.1:0", &leaf);
    let text = format!(
        "state_dir = \"state\"\n\n[proxy]\nlisten = \"127.0.0.1:0\"\n\n[proxy.tls]\nlisten = \"{tls_addr}\"\n\n{service}"
    );
    std::fs::write(dir.path().join("teal.toml"), text).unwrap();
    let daemon = Served::start(dir.path()).await;
    teal_ok(dir.path(), &["deploy", "web"]).await;

    // `teal status` says where the TLS listener is, beside the plain one.
    let human = teal_ok(dir.path(), &["status"]).await;
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains(&format!(", TLS on {tls_addr}\n")), "{human}");
    let json = teal_ok(dir.path(), &["status", "--json"]).await;
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["tls_listen"], tls_addr.to_string(), "{json}");

    let tls = ca
        .connect(tls_addr, "web.test", &[b"http/1.1"])
        .await
        .unwrap();
    assert!(served_cert(&tls) == leaf.der);
    let mut conn = Conn::over(tls).await.unwrap();
    assert_eq!(conn.get("web.test", "/").await.unwrap().status, 200);
    drop(conn);

    let load = TlsLoad::start(&ca.root, tls_addr, "web.test", 0, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let daemon = upgraded(dir.path(), daemon).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counts = load.finish().await;
    assert_eq!(counts.failed, 0, "no failed request\n{}", logs(dir.path()));
    assert!(counts.ok > 10, "the client ran: {counts:?}");

    // The new daemon serves TLS on the same address, same certificate.
    let tls = ca
        .connect(tls_addr, "web.test", &[b"http/1.1"])
        .await
        .unwrap();
    assert!(served_cert(&tls) == leaf.der);
    let mut conn = Conn::over(tls).await.unwrap();
    assert_eq!(conn.get("web.test", "/").await.unwrap().status, 200);
    drop(conn);
    terminated(daemon).await;
}
