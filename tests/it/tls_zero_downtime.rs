//! TESTING.md's zero-downtime pattern over TLS, through the real daemon
//! (process runtime, builtin proxy) and a service with its own certificate
//! files: teal's load client speaks TLS (trusting the test's authority, SNI
//! the service's host, no retries, every failure counted) with keep-alive and
//! new-connection HTTP/1.1 clients and HTTP/2 clients (ALPN `h2`), across 20
//! deploys and a rollback. Halfway, the certificate files are replaced by a
//! new certificate (a new key and serial): the routes in place keep serving
//! the old one until the next deploy reads the files again, from which on new
//! connections get the new one, and no request fails across the swap. The
//! new-connection clients resume their sessions (rustls's client default).
//!
//! The plain-HTTP probes of `support::zero_downtime`'s story (the slow request,
//! the websocket, `serving`) do not reach a TLS service, whose plain requests
//! are redirected; those crossings are the story's, whatever the listener.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use teal::load::{Load, LoadReport, LoadSpec};

use crate::support::load::zero_drop;
use crate::support::proxy::Conn;
use crate::support::tls::{TestCa, TlsWeb, served_cert};
use crate::support::*;

const HOST: &str = "web.test";
/// Deploys after v0.
const DEPLOYS: usize = 20;
/// The certificate files are replaced right after this deploy went live.
const NEW_CERT_AFTER: usize = 10;
/// The rollback (to the version before) comes right after this deploy.
const ROLLBACK_AFTER: usize = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_failed_tls_requests_across_deploys_a_rollback_and_a_new_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let TlsWeb {
        spec,
        config,
        tls_addr,
        leaf: first,
    } = TlsWeb::new(dir.path(), &ca, HOST);
    let d = TestDaemon::start(&config).await;
    d.deploy(&spec, "v0").await.assert_live();
    assert_eq!(serving_tls(&ca, tls_addr).await.as_deref(), Some("v0"));

    let http1 = &[b"http/1.1".as_slice()];
    let h2 = &[b"h2".as_slice(), b"http/1.1".as_slice()];
    let load = |keepalive, fresh, alpn: &[&[u8]]| {
        Load::start(LoadSpec {
            host: Some(HOST.into()),
            tls: Some(ca.load_tls(HOST, alpn)),
            keepalive_connections: keepalive,
            fresh_connection_workers: fresh,
            max_duration: Duration::from_secs(300),
            ..zero_drop(tls_addr)
        })
    };
    let keepalive = load(6, 0, http1);
    let fresh = load(0, 2, http1);
    let http2 = load(2, 1, h2);
    let h2_conn = ca.connect(tls_addr, HOST, h2).await.unwrap();
    assert_eq!(h2_conn.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
    drop(h2_conn);

    let mut expected = BTreeSet::from(["v0".to_string()]);
    for n in 1..=DEPLOYS {
        let version = format!("v{n}");
        d.deploy(&spec, &version).await.assert_live();
        expected.insert(version.clone());
        let mut live = version;
        if n == NEW_CERT_AFTER {
            let before = fresh_cert(&ca, tls_addr).await;
            assert!(before == first.der, "v{n} serves the first certificate");
            let second = ca.leaf(dir.path(), "web", &[HOST]);
            assert!(second.der != first.der);
            assert!(
                fresh_cert(&ca, tls_addr).await == first.der,
                "new files take effect with the next change of routes, not before"
            );
            d.deploy(&spec, "v10b").await.assert_live();
            expected.insert("v10b".into());
            live = "v10b".into();
            assert!(
                fresh_cert(&ca, tls_addr).await == second.der,
                "the deploy after the swap serves the new certificate"
            );
        }
        if n == ROLLBACK_AFTER {
            d.rollback("web").await.assert_live();
            live = format!("v{}", n - 1);
        }
        assert_eq!(
            serving_tls(&ca, tls_addr).await.as_deref(),
            Some(live.as_str())
        );
    }

    let reports = [
        ("keep-alive HTTP/1.1", keepalive.stop().await, 6),
        ("new-connection HTTP/1.1", fresh.stop().await, 0),
        (
            "HTTP/2 (2 keep-alive, 1 new-connection)",
            http2.stop().await,
            2,
        ),
    ];
    d.stop().await;
    // New connections resume their session (stateless tickets), across
    // deploys and the new certificate too.
    let fresh = &reports[1].1;
    assert!(
        fresh.tls_resumed * 2 > fresh.sent,
        "new-connection clients resumed {} of {}",
        fresh.tls_resumed,
        fresh.sent
    );
    for (kind, report, keepalive_workers) in &reports {
        assert_clean_tls(kind, report, &expected);
        assert_eq!(
            report.keepalive_connects, *keepalive_workers,
            "{kind}: no keep-alive connection was closed under its client"
        );
    }
}

/// The load ran, not one request failed, only deployed versions answered,
/// and traffic followed the switches.
fn assert_clean_tls(kind: &str, report: &LoadReport, expected: &BTreeSet<String>) {
    eprintln!("{kind}:\n{}", report.render_table());
    assert!(report.sent > 200, "{kind}: the load ran: {report:?}");
    assert_eq!(report.failed(), 0, "{kind}: failed requests: {report:?}");
    assert_eq!(report.ok, report.sent, "{kind}: {report:?}");
    let seen: BTreeSet<String> = report.versions.keys().cloned().collect();
    assert!(seen.is_subset(expected), "{kind}: {seen:?}");
    assert!(seen.len() >= DEPLOYS / 2, "{kind}: {seen:?}");
}

/// The version the TLS listener serves now, on a new connection.
async fn serving_tls(ca: &TestCa, addr: SocketAddr) -> Option<String> {
    let tls = ca.connect(addr, HOST, &[b"http/1.1"]).await.ok()?;
    let reply = Conn::over(tls).await.ok()?.get(HOST, "/").await.ok()?;
    (reply.status == 200)
        .then(|| version_of(&reply.body))
        .flatten()
}

/// The certificate a new TLS connection is served.
async fn fresh_cert(ca: &TestCa, addr: SocketAddr) -> rustls::pki_types::CertificateDer<'static> {
    served_cert(&ca.connect(addr, HOST, &[b"http/1.1"]).await.unwrap())
}
