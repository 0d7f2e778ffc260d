//! TLS on the builtin proxy's TLS listener, with certificates a test
//! authority signed (`support::tls`): the certificate is chosen by SNI among
//! the services' hosts, an SNI no service names fails the handshake, ALPN
//! gives HTTP/2 or HTTP/1.1 (keep-alive), the app sees
//! `X-Forwarded-Proto: https`, plain HTTP to a TLS service gets 308 to https
//! (but ACME challenges), ACME challenges being validated are answered by
//! the proxy itself on both HTTP paths, a certificate can be swapped alone
//! (`Router::reload_certificate`), a returning client resumes its session,
//! and a silent TLS client is closed at the header timeout.

use std::time::Duration;

use rustls::HandshakeKind;
use rustls::pki_types::ServerName;
use teal::router::Router;
use teal::slot::Slot;
use teal::spec::ServiceSpec;
use teal_proxy::{HandedConn, ListenerName, Proxy, ProxyOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::support::proxy::*;
use crate::support::tls::{Leaf, TestCa, h2_client, h2_headers, served_cert};

/// A proxy with a TLS listener, services "a" (a.test) and "b" (b.test) with
/// their own certificates and backends, and "plain" (plain.test) without.
struct Tls {
    h: Harness,
    ca: TestCa,
    a: Leaf,
    b: Leaf,
    backends: Vec<TestBackend>,
    /// Each service as installed, with its app's address.
    services: Vec<(ServiceSpec, std::net::SocketAddr)>,
    _dir: tempfile::TempDir,
}

impl Tls {
    async fn start(mut opts: ProxyOptions) -> Tls {
        opts.tls_listen = Some(loopback());
        let h = Harness::with(opts).await;
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let a = ca.leaf(dir.path(), "a", &["a.test"]);
        let b = ca.leaf(dir.path(), "b", &["b.test", "www.b.test"]);
        let mut backends = Vec::new();
        let mut services = Vec::new();
        for (name, tls) in [("a", Some(&a)), ("b", Some(&b)), ("plain", None)] {
            let backend_app = TestBackend::start(name).await;
            let host = format!("{name}.test");
            let mut service = spec(name, &[&host], None);
            if name == "b" {
                service.hosts.push("www.b.test".into());
            }
            service.tls = tls.map(|leaf| leaf.files.clone());
            services.push((service, backend_app.addr));
            backends.push(backend_app);
        }
        let t = Tls {
            h,
            ca,
            a,
            b,
            backends,
            services,
            _dir: dir,
        };
        t.install(&t.h).await;
        t
    }

    /// Installs every service on `h`'s proxy.
    async fn install(&self, h: &Harness) {
        for (service, addr) in &self.services {
            h.proxy
                .set_routes(service, backend(Slot::Blue, &[*addr]), None)
                .await
                .expect("routes install");
        }
    }

    fn tls_addr(&self) -> std::net::SocketAddr {
        self.h.proxy.tls_addr().expect("a TLS listener")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_picks_each_services_certificate_and_it_chains_to_the_test_ca() {
    let t = Tls::start(ProxyOptions::default()).await;
    for (name, leaf, backend_name) in [
        ("a.test", &t.a, "a"),
        ("b.test", &t.b, "b"),
        ("www.b.test", &t.b, "b"),
    ] {
        // The client verifies the chain to the test CA and the name.
        let mut conn = t.ca.conn_presenting(t.tls_addr(), name, leaf).await;
        let reply = conn.get(name, "/").await.unwrap();
        assert_eq!(reply.status, 200, "{name}");
        assert!(reply.body.contains(backend_name), "{name}: {}", reply.body);
    }
    assert_eq!(t.backends[0].hits(), 1, "a's app");
    assert_eq!(t.backends[1].hits(), 2, "b's app");
    assert_eq!(t.backends[2].hits(), 0, "plain's app");
}

/// nginx with no `default_server` certificate answers an unknown SNI with
/// the first server's certificate (leaking its names); `ssl_reject_handshake
/// on` makes it refuse, which is what teal always does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sni_no_service_names_fails_the_handshake() {
    let t = Tls::start(ProxyOptions::default()).await;
    for name in ["other.test", "plain.test", "127.0.0.1"] {
        let result = t.ca.connect(t.tls_addr(), name, &[b"http/1.1"]).await;
        assert!(result.is_err(), "{name}: a handshake without a certificate");
    }
    // The listener still serves the names it has.
    assert!(t.ca.connect(t.tls_addr(), "a.test", &[]).await.is_ok());
}

/// A client that comes back resumes its TLS session, even after 300 other
/// clients came and went: teal issues stateless tickets, as nginx and HAProxy
/// do by default. rustls's default keeps sessions in a memory cache of 256
/// entries (two per TLS 1.3 handshake), where the first client's would be
/// gone by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_client_resumes_its_session_after_300_others() {
    let t = Tls::start(ProxyOptions::default()).await;
    let returning = t.ca.connector(&[b"http/1.1"]);
    let name = ServerName::try_from("a.test").unwrap();
    let connect = async || {
        let tcp = TcpStream::connect(t.tls_addr()).await.unwrap();
        returning.connect(name.clone(), tcp).await.unwrap()
    };
    let first = connect().await;
    assert_eq!(
        first.get_ref().1.handshake_kind(),
        Some(HandshakeKind::Full)
    );
    // The request also reads the tickets the server sent after the handshake.
    let mut conn = Conn::over(first).await.unwrap();
    assert_eq!(conn.get("a.test", "/").await.unwrap().status, 200);
    drop(conn);
    for n in 0..300 {
        let other = t.ca.connect(t.tls_addr(), "a.test", &[b"http/1.1"]);
        let mut conn = Conn::over(other.await.unwrap()).await.unwrap();
        let reply = conn.get("a.test", "/").await.unwrap();
        assert_eq!(reply.status, 200, "client {n}");
    }
    let again = connect().await;
    assert_eq!(
        again.get_ref().1.handshake_kind(),
        Some(HandshakeKind::Resumed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_h2_gets_http2_and_the_app_sees_https() {
    let t = Tls::start(ProxyOptions::default()).await;
    let tls =
        t.ca.connect(t.tls_addr(), "a.test", &[b"h2", b"http/1.1"])
            .await
            .unwrap();
    let mut sender = h2_client(tls).await;
    for _ in 0..3 {
        let body = h2_headers(&mut sender, "a.test").await;
        assert!(body.contains("x-forwarded-proto: https"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_over_tls_keeps_alive_and_the_app_sees_https() {
    let t = Tls::start(ProxyOptions::default()).await;
    let tls =
        t.ca.connect(t.tls_addr(), "b.test", &[b"http/1.1"])
            .await
            .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut conn = Conn::over(tls).await.unwrap();
    // Several requests on one connection, with a pause long enough for the
    // connection to park between them.
    for round in 0..3 {
        let reply = conn.get("b.test", "/headers").await.unwrap();
        assert_eq!(reply.status, 200, "round {round}");
        let body = reply.body.to_ascii_lowercase();
        assert!(body.contains("x-forwarded-proto: https"), "{body}");
        assert!(!conn.is_closed(), "round {round}: kept alive");
        if round == 1 {
            // Idle: the connection parks (hyper's buffers dropped), TLS and all.
            let parked = crate::support::eventually(Duration::from_secs(10), async || {
                t.h.proxy.client_connections().parked == 1
            })
            .await;
            assert!(parked, "the idle TLS connection parked");
        }
    }
    assert_eq!(
        t.h.proxy.client_connections().open,
        1,
        "one connection did it all"
    );
}

/// nginx does the same with `return 308 https://$host$request_uri;` in a
/// plain server block, and a `location /.well-known/acme-challenge/` beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_a_tls_service_gets_308_to_https_but_acme_challenges() {
    let t = Tls::start(ProxyOptions::default()).await;
    let port = t.tls_addr().port();
    // The lean path (a plain GET) and hyper's (a chunked POST).
    let requests: [(&str, String); 2] = [
        (
            "lean",
            "GET /a/b?c=d HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n".to_string(),
        ),
        (
            "hyper",
            "POST /a/b?c=d HTTP/1.1\r\nHost: A.test:80\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n".to_string(),
        ),
    ];
    for (path, request) in &requests {
        let reply = raw_exchange(t.h.addr(), request.as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 308"), "{path}: {reply}");
        let location = format!("https://a.test:{port}/a/b?c=d");
        assert!(
            reply
                .to_ascii_lowercase()
                .contains(&format!("location: {location}\r\n")),
            "{path}: {reply}"
        );
    }
    // ACME challenges are served as before, on both paths.
    let challenge =
        "GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";
    let reply = raw_exchange(t.h.addr(), challenge.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "lean: {reply}");
    let challenge = "POST /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\
                     Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let reply = raw_exchange(t.h.addr(), challenge.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "hyper: {reply}");
    // A service without TLS is served over plain HTTP.
    let reply = raw_exchange(
        t.h.addr(),
        b"GET / HTTP/1.1\r\nHost: plain.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200"), "plain: {reply}");
}

/// `Router::set_challenge`: the production listener answers a token being
/// validated itself, whatever the Host (a TLS service's, none's), on the
/// lean path and on hyper's (HTTP/1.0), and stops once it is withdrawn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_challenges_being_validated_are_answered_on_both_paths_whatever_the_host() {
    let t = Tls::start(ProxyOptions::default()).await;
    let router: &dyn Router = &*t.h.proxy;
    router
        .set_challenge("tok", Some("tok.thumbprint"))
        .await
        .unwrap();
    for (path, request) in [
        (
            "lean, a TLS service",
            "GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
        ),
        (
            "lean, no service",
            "GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: nobody.test\r\nConnection: close\r\n\r\n",
        ),
        (
            "hyper, no service",
            "GET /.well-known/acme-challenge/tok HTTP/1.0\r\nHost: nobody.test\r\n\r\n",
        ),
    ] {
        let reply = raw_exchange(t.h.addr(), request.as_bytes()).await;
        assert!(
            reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200"),
            "{path}: {reply}"
        );
        assert!(
            reply
                .to_ascii_lowercase()
                .contains("content-type: text/plain"),
            "{path}: {reply}"
        );
        assert!(reply.ends_with("\r\n\r\ntok.thumbprint"), "{path}: {reply}");
    }
    assert_eq!(
        t.backends[0].hits(),
        0,
        "answered by the proxy, not a's app"
    );
    // A HEAD gets the head only.
    let reply = raw_exchange(
        t.h.addr(),
        b"HEAD /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        reply.starts_with("HTTP/1.1 200") && reply.ends_with("\r\n\r\n"),
        "{reply}"
    );

    router.set_challenge("tok", None).await.unwrap();
    let reply = raw_exchange(
        t.h.addr(),
        b"GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: nobody.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 404"), "withdrawn: {reply}");
}

/// `Router::reload_certificate`: new connections get the new certificate,
/// one opened before keeps its own and is served, routes stay; without
/// a certificate the names fail the handshake and plain HTTP is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_reloaded_alone_serves_new_connections_and_keeps_routes() {
    let t = Tls::start(ProxyOptions::default()).await;
    let router: &dyn Router = &*t.h.proxy;
    let before =
        t.ca.connect(t.tls_addr(), "a.test", &[b"http/1.1"])
            .await
            .unwrap();
    assert!(served_cert(&before) == t.a.der);
    let mut open = Conn::over(before).await.unwrap();

    let renewed = t.ca.leaf(t._dir.path(), "a2", &["a.test"]);
    let mut spec = t.services[0].0.clone();
    spec.tls = Some(renewed.files.clone());
    router.reload_certificate(&spec).await.unwrap();
    let after =
        t.ca.connect(t.tls_addr(), "a.test", &[b"http/1.1"])
            .await
            .unwrap();
    assert!(served_cert(&after) == renewed.der, "the new certificate");
    assert_eq!(
        Conn::over(after)
            .await
            .unwrap()
            .get("a.test", "/")
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        open.get("a.test", "/").await.unwrap().status,
        200,
        "the open connection"
    );

    spec.tls = None;
    router.reload_certificate(&spec).await.unwrap();
    assert!(
        t.ca.connect(t.tls_addr(), "a.test", &[b"http/1.1"])
            .await
            .is_err()
    );
    let reply = raw_exchange(
        t.h.addr(),
        b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "no redirect without a certificate: {reply}"
    );

    let mut unknown = spec.clone();
    unknown.name = "unknown".into();
    unknown.tls = Some(renewed.files.clone());
    assert!(
        router.reload_certificate(&unknown).await.is_err(),
        "a service without routes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redirect_off_plain_http_is_served() {
    let opts = ProxyOptions {
        tls_redirect: false,
        ..ProxyOptions::default()
    };
    let t = Tls::start(opts).await;
    let reply = raw_exchange(
        t.h.addr(),
        b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

/// A client that connects to the TLS listener and sends nothing (or stops
/// mid-handshake) is closed once the header read timeout passes. nginx
/// closes it after `ssl_handshake_timeout` (60 s by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_tls_client_is_closed_at_the_header_timeout() {
    let opts = ProxyOptions {
        header_read_timeout: Duration::from_secs(1),
        ..ProxyOptions::default()
    };
    let t = Tls::start(opts).await;
    let mut silent = TcpStream::connect(t.tls_addr()).await.unwrap();
    // A partial ClientHello record header, then nothing.
    let mut half = TcpStream::connect(t.tls_addr()).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02]).await.unwrap();
    for (what, stream) in [("silent", &mut silent), ("half a hello", &mut half)] {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(EXCHANGE, stream.read(&mut buf)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => panic!("{what}: the proxy sent {n} bytes"),
            Err(_) => panic!("{what}: still open after {EXCHANGE:?}"),
        }
    }
    // The gauge drops just after the socket closes.
    let none = crate::support::eventually(Duration::from_secs(10), async || {
        t.h.proxy.client_connections().open == 0
    })
    .await;
    assert!(none, "both connections were closed");
}

/// A hand-over (`teal serve --upgrade`): the TLS listening socket goes to
/// the successor with the others, and a TLS connection, which cannot move
/// (its session keys live in the old process), finishes its request in
/// progress with `Connection: close` and closes; an idle one serves its next
/// request the same way (closing it at the hand-over would lose a request
/// sent at that instant); the client's next connection is the successor's. nginx's binary upgrade hands over the
/// listening sockets only, and its old workers close keep-alive connections
/// the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_moves_the_tls_listener_and_closes_tls_connections_after_their_request() {
    let old = Tls::start(ProxyOptions::default()).await;
    let tls = old
        .ca
        .connect(old.tls_addr(), "a.test", &[b"http/1.1"])
        .await
        .unwrap();
    let mut conn = Conn::over(tls).await.unwrap();
    assert_eq!(conn.get("a.test", "/").await.unwrap().status, 200);
    let slow = tokio::spawn(async move {
        let reply = conn.get("a.test", "/slow?ms=1500").await;
        (reply, conn)
    });
    // And an idle keep-alive one.
    let tls = old
        .ca
        .connect(old.tls_addr(), "b.test", &[b"http/1.1"])
        .await
        .unwrap();
    let mut idle = Conn::over(tls).await.unwrap();
    assert_eq!(idle.get("b.test", "/").await.unwrap().status, 200);
    let started = crate::support::eventually(Duration::from_secs(10), async || {
        old.h.proxy.stats("a", Slot::Blue).in_flight > 0
    })
    .await;
    assert!(started, "the slow request reached the app");

    let sockets = old.h.proxy.listening_sockets().expect("duplicates");
    let names: Vec<ListenerName> = sockets.iter().map(|l| l.name.clone()).collect();
    assert!(names.contains(&ListenerName::Tls), "{names:?}");
    let opts = ProxyOptions {
        tls_listen: Some(old.tls_addr()),
        ..ProxyOptions::default()
    };
    let shutdown = CancellationToken::new();
    let proxy = Proxy::bind_inherited(old.h.addr(), opts, shutdown.clone(), sockets)
        .await
        .expect("bind on the inherited sockets");
    let new = Harness { proxy, shutdown };
    assert_eq!(
        new.proxy.tls_addr(),
        Some(old.tls_addr()),
        "the same TLS listener"
    );
    old.install(&new).await;
    new.proxy.start_accepting();
    let (give, mut take) = tokio::sync::mpsc::unbounded_channel::<HandedConn>();
    let serving = std::sync::Arc::clone(&new.proxy);
    tokio::spawn(async move {
        while let Some(conn) = take.recv().await {
            serving.serve_handed(conn);
        }
    });
    old.h.proxy.hand_over(give);

    let (reply, conn) = slow.await.unwrap();
    let reply = reply.expect("the request in progress finishes");
    assert_eq!((reply.status, reply.body.as_str()), (200, "a"));
    let close = reply
        .headers
        .get("connection")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(close.as_deref(), Some("close"), "{:?}", reply.headers);
    let closed =
        crate::support::eventually(Duration::from_secs(10), async || conn.is_closed()).await;
    assert!(closed, "the TLS connection closed after its response");
    // The idle one serves its next request here, then closes.
    let reply = idle
        .get("b.test", "/")
        .await
        .expect("the idle connection's next request");
    assert_eq!((reply.status, reply.body.as_str()), (200, "b"));
    let close = reply
        .headers
        .get("connection")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(close.as_deref(), Some("close"), "{:?}", reply.headers);
    let closed =
        crate::support::eventually(Duration::from_secs(10), async || idle.is_closed()).await;
    assert!(closed, "the idle TLS connection closed after its response");

    // A new TLS connection: the successor's, with the same certificate.
    let tls = old
        .ca
        .connect(old.tls_addr(), "a.test", &[b"http/1.1"])
        .await
        .expect("the successor's handshake");
    assert!(served_cert(&tls) == old.a.der);
    let mut conn = Conn::over(tls).await.unwrap();
    assert_eq!(conn.get("a.test", "/").await.unwrap().status, 200);
    assert_eq!(new.proxy.stats("a", Slot::Blue).requests, 1);
    assert_eq!(old.h.proxy.connections_handed_over(), 0);
    old.h.shutdown.cancel();
    old.h.proxy.wait_closed(Duration::from_secs(10)).await;
}
