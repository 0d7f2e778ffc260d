//! TLS through the real daemon (process runtime, builtin proxy): a service
//! with its own certificate files is served on the TLS listener, plain HTTP
//! for it is redirected, and keep-alive and new-connection TLS clients see
//! no failed request and no closed connection across deploys and a rollback
//! (the certificate stays installed with every change of routes); across
//! `teal serve --upgrade` the TLS listener moves to the new daemon; `teal
//! status` says where it is.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::proxy::{Conn, raw_exchange, unused_addr};
use crate::support::tls::{TestCa, TlsWeb};
use crate::support::*;

/// What the TLS clients counted.
#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
    /// Keep-alive connections that had to be opened again.
    reconnects: AtomicU64,
}

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
    let reply = raw_exchange(
        d.addr,
        b"GET /x?y=1 HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 308"), "{reply}");
    let location = format!("location: https://web.test:{}/x?y=1\r\n", tls_addr.port());
    assert!(reply.to_ascii_lowercase().contains(&location), "{reply}");

    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut clients = Vec::new();
    // Four keep-alive clients and one opening a connection per request.
    for keepalive in [true, true, true, true, false] {
        let (ca, counts, stop) = (Arc::clone(&ca), Arc::clone(&counts), Arc::clone(&stop));
        clients.push(tokio::spawn(async move {
            let mut conn: Option<Conn> = None;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                if conn.as_ref().is_none_or(Conn::is_closed) {
                    if conn.is_some() {
                        counts.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    let tls = match ca.connect(tls_addr, "web.test", &[b"http/1.1"]).await {
                        Ok(tls) => tls,
                        Err(error) => {
                            eprintln!("handshake failed: {error}");
                            counts.failed.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    conn = Conn::over(tls).await.ok();
                    if conn.is_none() {
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
                let reply = conn.as_mut().expect("connected").get("web.test", "/").await;
                match reply {
                    Ok(reply) if reply.status == 200 => {
                        counts.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        eprintln!("request failed: {:?}", other.map(|r| (r.status, r.body)));
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if !keepalive {
                    conn = None;
                }
            }
        }));
    }

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
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let (ok, failed, reconnects) = (
        counts.ok.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
        counts.reconnects.load(Ordering::Relaxed),
    );
    eprintln!("TLS load: {ok} ok, {failed} failed, {reconnects} keep-alive reconnects");
    assert_eq!(failed, 0, "no failed request");
    assert_eq!(reconnects, 0, "every keep-alive client kept its connection");
    assert!(ok > 100, "the load ran: {ok}");

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
    use crate::support::served::{Served, demo_web_toml, logs, teal_ok, terminated, upgraded};
    use crate::support::tls::served_cert;

    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(TestCa::new());
    let leaf = ca.leaf(dir.path(), "web", &["web.test"]);
    let tls_addr = unused_addr();
    let service = demo_web_toml("127.0.0.1:0").replace(
        "version = \"1.0.0\"\n",
        &format!(
            "version = \"1.0.0\"\nhosts = [\"web.test\"]\ntls = {{ cert = {:?}, key = {:?} }}\n",
            leaf.files.cert, leaf.files.key
        ),
    );
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

    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(120);
    let client = {
        let (ca, counts, stop) = (Arc::clone(&ca), Arc::clone(&counts), Arc::clone(&stop));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let reply = async {
                    let tls = ca
                        .connect(tls_addr, "web.test", &[b"http/1.1"])
                        .await
                        .map_err(|e| e.to_string())?;
                    Conn::over(tls).await?.get("web.test", "/").await
                }
                .await;
                match reply {
                    Ok(reply) if reply.status == 200 => {
                        counts.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        eprintln!("request failed: {:?}", other.map(|r| (r.status, r.body)));
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let daemon = upgraded(dir.path(), daemon).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    client.await.unwrap();
    let (ok, failed) = (
        counts.ok.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
    );
    eprintln!("TLS across the upgrade: {ok} ok, {failed} failed");
    assert_eq!(failed, 0, "no failed request\n{}", logs(dir.path()));
    assert!(ok > 10, "the client ran: {ok}");

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
