//! TLS with the nginx router, against the real nginx (managed mode) and
//! certificates the test authority signs (`support::tls`): each TLS service's
//! certificate chosen by SNI, HTTP/2 by ALPN, an unknown name refused at the
//! handshake, plain HTTP redirected with the right Location, ACME challenge
//! files set through `Router::set_challenge` answered over plain HTTP while
//! redirects are on (and gone once removed), `Router::reload_certificate`
//! serving new files to new connections under a TLS load with no failed
//! request, and deploys over TLS through the daemon with none either.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use teal::router::nginx::NginxRouter;
use teal::router::{Router, RouterError};
use teal::slot::Slot;
use teal::spec::{ProxySpec, ServiceSpec};
use tokio_util::sync::CancellationToken;

use crate::support::proxy::{Conn, TestBackend, backend, raw_exchange, spec};
use crate::support::tls::{Leaf, TestCa, assert_redirected, h2_client, h2_headers, served_cert};
use crate::support::tls_load::TlsLoad;
use crate::support::*;

/// A managed nginx with a TLS listener; services "a" (a.test, TLS), "b"
/// (b.test and www.b.test, TLS) and "plain" (plain.test), each with its app.
struct Tls {
    router: Arc<NginxRouter>,
    proxy: ProxySpec,
    ca: Arc<TestCa>,
    a: Leaf,
    b: Leaf,
    services: Vec<ServiceSpec>,
    apps: Vec<TestBackend>,
    dir: tempfile::TempDir,
}

impl Tls {
    async fn start() -> Tls {
        Tls::start_in(tempfile::tempdir().unwrap()).await
    }

    async fn start_in(dir: tempfile::TempDir) -> Tls {
        let proxy = nginx::with_tls(nginx::config(dir.path(), vec![])).proxy;
        let router = NginxRouter::start(
            &proxy,
            &dir.path().join("state"),
            CancellationToken::new(),
            false,
        )
        .await
        .expect("nginx router starts");
        let ca = Arc::new(TestCa::new());
        let a = ca.leaf(dir.path(), "a", &["a.test"]);
        let b = ca.leaf(dir.path(), "b", &["b.test", "www.b.test"]);
        let mut services = Vec::new();
        let mut apps = Vec::new();
        for (name, hosts, leaf) in [
            ("a", &["a.test"][..], Some(&a)),
            ("b", &["b.test", "www.b.test"][..], Some(&b)),
            ("plain", &["plain.test"][..], None),
        ] {
            let app = TestBackend::start(name).await;
            let mut service = spec(name, hosts, None);
            service.tls = leaf.map(|leaf| leaf.files.clone());
            router
                .set_routes(&service, backend(Slot::Blue, &[app.addr]), None)
                .await
                .expect("routes install");
            services.push(service);
            apps.push(app);
        }
        Tls {
            router,
            proxy,
            ca,
            a,
            b,
            services,
            apps,
            dir,
        }
    }

    fn tls_addr(&self) -> SocketAddr {
        self.proxy.tls.as_ref().expect("[proxy.tls]").listen
    }

    fn plain_addr(&self) -> SocketAddr {
        self.proxy.listen
    }

    /// `GET path` with `host` on the plain listener, on a connection of its own.
    async fn plain_get(&self, host: &str, path: &str) -> String {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        raw_exchange(self.plain_addr(), request.as_bytes()).await
    }

    async fn close(self) {
        self.router.close(Duration::from_secs(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_alpn_unknown_names_and_the_redirect() {
    if !nginx::required() {
        return;
    }
    let t = Tls::start().await;

    // Each name gets its service's certificate, verified up to the test CA,
    // and its service's app, which sees https.
    for (name, leaf, app) in [
        ("a.test", &t.a, "a"),
        ("b.test", &t.b, "b"),
        ("www.b.test", &t.b, "b"),
    ] {
        let mut conn = t.ca.conn_presenting(t.tls_addr(), name, leaf).await;
        let reply = conn.get(name, "/headers").await.unwrap();
        assert_eq!(reply.status, 200, "{name}: {reply:?}");
        let body = reply.body.to_ascii_lowercase();
        assert!(body.contains("x-forwarded-proto: https"), "{body}");
        let reply = Conn::over(t.ca.connect(t.tls_addr(), name, &[]).await.unwrap())
            .await
            .unwrap()
            .get(name, "/")
            .await
            .unwrap();
        assert_eq!((reply.status, reply.body.as_str()), (200, app), "{name}");
    }

    // A name no TLS service claims, a plain service's, or none (an IP
    // address: no SNI) fails the handshake: no certificate is shown.
    for name in ["other.test", "plain.test", "127.0.0.1"] {
        let result = t.ca.connect(t.tls_addr(), name, &[b"http/1.1"]).await;
        assert!(result.is_err(), "{name}: a handshake without a certificate");
    }

    // ALPN h2: HTTP/2. With client keep-alive off (the default), nginx serves
    // one request per connection, h2 as HTTP/1.1 (GOAWAY after the first).
    let tls =
        t.ca.connect(t.tls_addr(), "a.test", &[b"h2", b"http/1.1"])
            .await
            .unwrap();
    let body = h2_headers(&mut h2_client(tls).await, "a.test").await;
    assert!(body.contains("x-forwarded-proto: https"), "{body}");

    // Plain HTTP to a TLS service: 308 to the same host (lowercased, its
    // port dropped), path and query, on the TLS port.
    let port = t.tls_addr().port();
    for host in ["a.test", "A.Test:80", "www.b.test"] {
        let reply = t.plain_get(host, "/x/y?z=1&w").await;
        assert!(reply.starts_with("HTTP/1.1 308"), "{host}: {reply}");
        let location = format!(
            "location: https://{}:{port}/x/y?z=1&w\r\n",
            host.split(':').next().unwrap().to_ascii_lowercase()
        );
        assert!(
            reply.to_ascii_lowercase().contains(&location),
            "{host}: {reply}"
        );
    }
    // A service without TLS is served over plain HTTP; an unknown Host is 404.
    let reply = t.plain_get("plain.test", "/").await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("plain"), "{reply}");
    assert!(
        t.plain_get("other.test", "/")
            .await
            .starts_with("HTTP/1.1 404")
    );
    assert_eq!(t.apps[2].hits(), 1, "the plain app");
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_are_answered_over_plain_http_while_redirects_are_on() {
    if !nginx::required() {
        return;
    }
    // The state dir sits in a 0700 dir, as one under /root would: a root
    // teal's workers (`nobody`) then read the files from a directory of
    // their own under /var/cache/teal-nginx.
    let dir = tempfile::tempdir().unwrap();
    let closed = std::os::unix::fs::PermissionsExt::from_mode(0o700);
    std::fs::set_permissions(dir.path(), closed).unwrap();
    let t = Tls::start_in(dir).await;
    let token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
    let key_authorization = format!("{token}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI");
    let path = format!("/.well-known/acme-challenge/{token}");

    // No file yet: the request goes where it would have gone, never redirected
    // (the app, which may answer its own challenges; 404 for an unknown Host).
    let reply = t.plain_get("a.test", &path).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("\r\n\r\na"), "a's app answers: {reply}");
    assert!(
        t.plain_get("other.test", &path)
            .await
            .starts_with("HTTP/1.1 404")
    );

    t.router
        .set_challenge(token, Some(&key_authorization))
        .await
        .expect("set the challenge");
    // Whatever the Host: a TLS service's (redirected otherwise), a plain
    // service's, one no service claims, none at all (HTTP/1.0).
    for host in ["a.test", "www.b.test", "plain.test", "other.test"] {
        let reply = t.plain_get(host, &path).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{host}: {reply}");
        assert!(
            reply.ends_with(&format!("\r\n\r\n{key_authorization}")),
            "{host}: {reply}"
        );
    }
    let reply = raw_exchange(
        t.plain_addr(),
        format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(reply.ends_with(&key_authorization), "no Host: {reply}");
    // Only on the plain listener: over TLS the path reaches the app.
    let tls =
        t.ca.connect(t.tls_addr(), "a.test", &[b"http/1.1"])
            .await
            .unwrap();
    let reply = Conn::over(tls).await.unwrap().get("a.test", &path).await;
    assert_eq!(reply.unwrap().body, "a");
    // Another token is not served; a path beside it is redirected.
    let other = t
        .plain_get("a.test", "/.well-known/acme-challenge/other")
        .await;
    assert!(other.ends_with("\r\n\r\na"), "{other}");
    let beside = t.plain_get("a.test", "/.well-known/other").await;
    assert!(beside.starts_with("HTTP/1.1 308"), "{beside}");

    // Removed: back to the app.
    t.router.set_challenge(token, None).await.unwrap();
    let reply = t.plain_get("a.test", &path).await;
    assert!(reply.ends_with("\r\n\r\na"), "{reply}");
    // A token that could leave the directory is refused.
    for bad in ["../../nginx", "a/b", "", "x.y"] {
        let result = t.router.set_challenge(bad, Some("x")).await;
        assert!(matches!(result, Err(RouterError::Invalid(_))), "{bad:?}");
    }
    t.close().await;
}

/// New files for a service, then `reload_certificate`: the next connection
/// gets the new certificate, while TLS clients (a connection per request,
/// nginx's default `keepalive_timeout = "0s"`) lose nothing and a slow
/// request begun on the old certificate finishes. A certificate nginx cannot
/// load changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_certificate_reaches_new_connections_and_no_request_fails() {
    if !nginx::required() {
        return;
    }
    let t = Tls::start().await;
    let a = t.services[0].clone();
    let load = TlsLoad::start(&t.ca.root, t.tls_addr(), "a.test", 0, 3);
    assert!(load.answered_more(20, Duration::from_secs(30)).await);

    let slow = {
        let tls =
            t.ca.connect(t.tls_addr(), "a.test", &[b"http/1.1"])
                .await
                .unwrap();
        assert!(served_cert(&tls) == t.a.der);
        tokio::spawn(async move {
            let mut conn = Conn::over(tls).await.unwrap();
            conn.get("a.test", "/slow?ms=1500").await
        })
    };
    let mut served = vec![t.a.der.clone()];
    for round in 0..3 {
        // Same paths, new files: a renewal.
        let renewed = t.ca.leaf(t.dir.path(), "a", &["a.test"]);
        assert!(!served.contains(&renewed.der));
        t.router
            .reload_certificate(&a)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let tls =
            t.ca.connect(t.tls_addr(), "a.test", &[b"http/1.1"])
                .await
                .unwrap();
        assert!(
            served_cert(&tls) == renewed.der,
            "round {round}: the new certificate"
        );
        served.push(renewed.der);
        // b's certificate did not change.
        let tls =
            t.ca.connect(t.tls_addr(), "b.test", &[b"http/1.1"])
                .await
                .unwrap();
        assert!(served_cert(&tls) == t.b.der);
        assert!(load.answered_more(10, Duration::from_secs(30)).await);
    }
    let reply = slow.await.unwrap().expect("the slow request finishes");
    assert_eq!((reply.status, reply.body.as_str()), (200, "a"));

    // A key that does not match: refused, nginx keeps serving the last good
    // certificate.
    let current = served.last().unwrap().clone();
    std::fs::copy(&t.b.files.key, &t.a.files.key).unwrap();
    let refused = t.router.reload_certificate(&a).await;
    assert!(
        matches!(&refused, Err(RouterError::Invalid(m)) if m.contains("does not match")),
        "{refused:?}"
    );
    let tls =
        t.ca.connect(t.tls_addr(), "a.test", &[b"http/1.1"])
            .await
            .unwrap();
    assert!(served_cert(&tls) == current, "still the last good one");

    let report = load.finish().await;
    assert_eq!(report.failed, 0, "no failed TLS request: {report:?}");
    t.close().await;
}

/// One service's certificate files going bad (deleted, say) affects that
/// service only: another service's change still reaches nginx (which would
/// refuse the whole config with a file it cannot load), rendered without the
/// bad service's TLS server; its own deploy fails and changes nothing; good
/// files and `reload_certificate` bring its TLS server back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_certificate_affects_only_its_own_service() {
    if !nginx::required() {
        return;
    }
    let t = Tls::start().await;
    let (a, b) = (t.services[0].clone(), t.services[1].clone());
    std::fs::remove_file(&t.a.files.key).unwrap();

    let own = t
        .router
        .set_routes(&a, backend(Slot::Green, &[t.apps[1].addr]), None)
        .await;
    assert!(
        matches!(&own, Err(RouterError::Invalid(m)) if m.contains("cannot be served")),
        "{own:?}"
    );
    // b moves to another app: installed, without a's TLS server.
    let moved = TestBackend::start("b2").await;
    t.router
        .set_routes(&b, backend(Slot::Green, &[moved.addr]), None)
        .await
        .expect("another service's change is not held up by a's files");
    let mut conn = t.ca.conn_presenting(t.tls_addr(), "b.test", &t.b).await;
    assert_eq!(conn.get("b.test", "/").await.unwrap().body, "b2");
    assert!(t.ca.connect(t.tls_addr(), "a.test", &[]).await.is_err());
    // a's plain requests go to a's app (its production is unchanged), not to https.
    let reply = t.plain_get("a.test", "/").await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("\r\n\r\na"), "{reply}");

    let renewed = t.ca.leaf(t.dir.path(), "a", &["a.test"]);
    t.router.reload_certificate(&a).await.unwrap();
    let mut conn = t.ca.conn_presenting(t.tls_addr(), "a.test", &renewed).await;
    assert_eq!(conn.get("a.test", "/").await.unwrap().body, "a");
    assert!(t.plain_get("a.test", "/").await.starts_with("HTTP/1.1 308"));
    t.close().await;
}

/// A certificate for a service nginx has no routes for yet is applied with
/// its routes; one whose paths change (an ACME service's first certificate)
/// gets its TLS server at `reload_certificate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_certificate_gives_the_service_its_tls_server() {
    if !nginx::required() {
        return;
    }
    let t = Tls::start().await;
    let mut plain = t.services[2].clone();
    assert!(t.ca.connect(t.tls_addr(), "plain.test", &[]).await.is_err());
    let leaf = t.ca.leaf(t.dir.path(), "plain", &["plain.test"]);
    plain.tls = Some(leaf.files.clone());
    t.router.reload_certificate(&plain).await.unwrap();
    let tls = t.ca.connect(t.tls_addr(), "plain.test", &[]).await.unwrap();
    assert!(served_cert(&tls) == leaf.der);
    let reply = Conn::over(tls)
        .await
        .unwrap()
        .get("plain.test", "/")
        .await
        .unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "plain"));
    assert!(
        t.plain_get("plain.test", "/")
            .await
            .starts_with("HTTP/1.1 308")
    );

    let mut later = spec("later", &["later.test"], None);
    later.tls = Some(t.ca.leaf(t.dir.path(), "later", &["later.test"]).files);
    t.router.reload_certificate(&later).await.unwrap();
    assert!(t.ca.connect(t.tls_addr(), "later.test", &[]).await.is_err());
    t.close().await;
}

/// Through the daemon (process runtime): deploys blue → green → blue of a TLS
/// service with nginx as the router, under TLS clients opening a connection
/// per request; none fails, and plain HTTP redirects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_over_tls_lose_nothing() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(TestCa::new());
    let mut web = nginx::service("web", dir.path(), 2);
    ca.serve(&mut web, dir.path(), "web.test");
    web.drain.timeout = Duration::from_secs(3);
    let config = nginx::with_tls(nginx::config(dir.path(), vec![]));
    let tls_addr = config.proxy.tls.as_ref().unwrap().listen;
    let d = TestDaemon::start(&config).await;
    d.deploy(&web, "1.0.0").await.assert_live();

    assert_redirected(d.addr, "web.test", tls_addr.port()).await;

    let load = TlsLoad::start(&ca.root, tls_addr, "web.test", 0, 4);
    assert!(load.answered_more(20, Duration::from_secs(30)).await);
    for version in ["2.0.0", "1.0.0"] {
        d.deploy(&web, version).await.assert_live();
        assert_eq!(serving_tls(&ca, tls_addr).await.as_deref(), Some(version));
        assert!(load.answered_more(20, Duration::from_secs(30)).await);
    }
    let report = load.finish().await;
    assert_eq!(report.failed, 0, "no failed TLS request: {report:?}");
    assert!(report.ok > 50, "the load ran: {report:?}");
    d.stop().await;
}

/// The version the TLS listener serves for web.test.
async fn serving_tls(ca: &TestCa, addr: SocketAddr) -> Option<String> {
    let tls = ca.connect(addr, "web.test", &[b"http/1.1"]).await.ok()?;
    let reply = Conn::over(tls)
        .await
        .ok()?
        .get("web.test", "/")
        .await
        .ok()?;
    (reply.status == 200)
        .then(|| version_of(&reply.body))
        .flatten()
}

/// `teal serve --upgrade` (the real binary) with a TLS service through the
/// managed nginx: the new daemon adopts the same master and renders the same
/// config (TLS servers, challenge webroot and all), so nginx is not reloaded;
/// the same certificate is served, and no TLS request fails across it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_keeps_nginx_serving_tls_without_a_reload() {
    use crate::support::served::{Served, logs, teal_ok, terminated, upgraded};
    use crate::support::tls::tls_web_toml;

    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(TestCa::new());
    let leaf = ca.leaf(dir.path(), "web", &["web.test"]);
    let (listen, tls_addr) = (free_addr(), free_addr());
    let service = tls_web_toml(&free_addr().to_string(), &leaf);
    let text = format!(
        "state_dir = \"state\"\n\n[proxy]\nlisten = \"{listen}\"\nrouter = \"nginx\"\n\n[proxy.nginx]\nworkers = 2\n\n[proxy.tls]\nlisten = \"{tls_addr}\"\n\n{service}"
    );
    std::fs::write(dir.path().join("teal.toml"), text).unwrap();
    let daemon = Served::start(dir.path()).await;
    teal_ok(dir.path(), &["deploy", "web"]).await;
    let state = dir.path().join("state");
    let master = nginx::master_pid(&state).expect("the managed master");
    let workers = nginx::serving_workers(master);
    assert_redirected(listen, "web.test", tls_addr.port()).await;

    let load = TlsLoad::start(&ca.root, tls_addr, "web.test", 0, 3);
    assert!(load.answered_more(20, Duration::from_secs(30)).await);
    let daemon = upgraded(dir.path(), daemon).await;
    assert!(load.answered_more(20, Duration::from_secs(30)).await);
    let report = load.finish().await;
    assert_eq!(report.failed, 0, "{report:?}\n{}", logs(dir.path()));
    assert_eq!(nginx::master_pid(&state), Some(master), "the same master");
    assert_eq!(nginx::serving_workers(master), workers, "no reload");
    let mut conn = ca.conn_presenting(tls_addr, "web.test", &leaf).await;
    assert_eq!(conn.get("web.test", "/").await.unwrap().status, 200);
    drop(conn);
    terminated(daemon).await;
}
