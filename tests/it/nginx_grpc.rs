//! gRPC through the nginx router (managed nginx, `grpc_pass`): the grpcio app
//! (`tests/apps/grpc_app.py`) as an h2c service with its own TLS server. gRPC
//! clients reach it over TLS (HTTP/2 by ALPN), HTTP/1.1 clients too (nginx
//! speaks HTTP/2 to the app for them, trailers included), and its preview
//! listener speaks HTTP/2 with prior knowledge. Under a gRPC load across
//! deploys and a rollback (each one a reload of nginx) no call gets an error
//! answer; a few end with the connection an old worker closes (README:
//! "builtin vs nginx").

use std::sync::Arc;
use std::time::Duration;

use crate::support::grpc::*;
use crate::support::tls::TestCa;
use crate::support::*;
use teal::spec::ServiceSpec;

/// The grpcio app as an h2c service behind a managed nginx with a TLS
/// listener: TLS for grpc.test (the name the calls ask for), a preview on a
/// free port, v1 live.
struct Grpc {
    d: TestDaemon,
    spec: ServiceSpec,
    /// gRPC clients' way in: TLS, HTTP/2 by ALPN.
    tls: Dial,
    ca: Arc<TestCa>,
    tls_addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl Grpc {
    async fn start() -> Grpc {
        let dir = tempfile::tempdir().unwrap();
        let ca = Arc::new(TestCa::new());
        let mut spec = grpc_service("rpc", dir.path());
        ca.serve(&mut spec, dir.path(), "grpc.test");
        spec.preview = Some(free_addr());
        spec.drain.timeout = Duration::from_secs(5);
        let config = nginx::with_tls(nginx::config(dir.path(), vec![]));
        let tls_addr = config.proxy.tls.as_ref().unwrap().listen;
        let d = TestDaemon::start(&config).await;
        d.deploy(&spec, "v1").await.assert_live();
        let tls = Dial::Tls {
            addr: tls_addr,
            name: "grpc.test".into(),
            connector: ca.connector(&[b"h2"]),
        };
        Grpc {
            d,
            spec,
            tls,
            ca,
            tls_addr,
            _dir: dir,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_through_nginx_over_tls_http1_and_preview() {
    if !nginx::required() || !require_grpcio() {
        return;
    }
    let Grpc {
        d,
        spec,
        tls,
        ca,
        tls_addr,
        _dir,
    } = Grpc::start().await;

    // HTTP/2 over TLS: a unary call and a server stream, with their trailers.
    let mut conn = tls.connect().await;
    assert_eq!(call(&mut conn, "Version", b"").await.unwrap(), ["v1"]);
    let streamed = call(&mut conn, "Count", b"3 10").await.unwrap();
    assert_eq!(streamed, ["v1 0", "v1 1", "v1 2"]);

    // An HTTP/1.1 client over TLS asking for trailers: nginx turns its call
    // into HTTP/2 to the app and sends grpc-status back in chunked trailers.
    let stream = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("grpc.test").unwrap();
    let stream = ca
        .connector(&[b"http/1.1"])
        .connect(name, stream)
        .await
        .unwrap();
    assert_eq!(http1_versions(stream, 2).await, ["v1"; 2]);

    // A new version staged: the preview listener serves it over h2c, while
    // production (the same TLS connection) stays on v1.
    d.deploy_with(&spec, "v2", false).await;
    let mut preview = Dial::Plain(spec.preview.unwrap()).connect().await;
    assert_eq!(call(&mut preview, "Version", b"").await.unwrap(), ["v2"]);
    let mut conn = tls.connect().await;
    assert_eq!(call(&mut conn, "Version", b"").await.unwrap(), ["v1"]);
    d.promote("rpc").await.assert_live();
    let mut conn = tls.connect().await;
    assert_eq!(call(&mut conn, "Version", b"").await.unwrap(), ["v2"]);
    d.stop().await;
}

/// Deploys under load. Each one reloads nginx.
const DEPLOYS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_through_nginx_survive_deploys_and_a_rollback() {
    if !nginx::required() || !require_grpcio() {
        return;
    }
    let Grpc {
        d, spec, tls, _dir, ..
    } = Grpc::start().await;
    let load = GrpcLoad::dial(tls.clone(), 3, 4).await;
    let tally = deploys_and_a_rollback(&d, &spec, load, DEPLOYS).await;
    // nginx's old workers close their idle HTTP/2 connections at a reload
    // (GOAWAY, then close): a call the client sent at that moment ends with
    // its connection. No call got an error answer (an HTTP error status or a
    // non-OK grpc-status) or was cut after nginx took it.
    assert_eq!(
        tally.failed, tally.connection_dropped,
        "calls failed with an answer: {tally:?}"
    );
    assert!(tally.ok > 500, "{tally:?}");
    assert!(
        tally.reconnects > 0,
        "nginx's reloads closed connections: {tally:?}"
    );
    let mut conn = tls.connect().await;
    let now = call(&mut conn, "Version", b"").await.expect("a call");
    assert_eq!(now[0], format!("v{DEPLOYS}"), "rolled back");
    d.stop().await;
}
