//! Helpers for the builtin proxy's tests (`proxy*.rs`, `verify_proxy.rs`, `nginx_proxy.rs`): small real
//! backends (hyper HTTP/1.1 servers on 127.0.0.1, and a strict raw app that
//! records what it read), real clients, and
//! spec/backend builders. No mocks.

mod backends;
mod client;
mod drip;
pub mod h2;
mod recorder;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use teal::router::Backend;
use teal::slot::Slot;
use teal::spec::{DrainSpec, HealthSpec, RuntimeSpec, ServiceSpec};
use teal_proxy::{Proxy, ProxyOptions};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

pub use backends::{OneShotBackend, TestBackend};
pub use client::*;
pub use drip::{DripBackend, drip_body};
pub use recorder::{Recorder, Seen};

/// Upper bound for any single client exchange in these tests.
pub const EXCHANGE: Duration = Duration::from_secs(30);

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A minimal service spec; health probes every 100 ms.
pub fn spec(name: &str, hosts: &[&str], preview: Option<SocketAddr>) -> ServiceSpec {
    ServiceSpec {
        name: name.into(),
        runtime: RuntimeSpec::Process { command: vec![] },
        instances: 1,
        version: None,
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        preview,
        env: Default::default(),
        secrets: Default::default(),
        workdir: ".".into(),
        health: HealthSpec {
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(2),
            ..HealthSpec::default()
        },
        drain: DrainSpec::default(),
        hooks: Default::default(),
        verify: None,
        tls: None,
        acme: false,
        policy: Default::default(),
        protocol: Default::default(),
    }
}

pub fn backend(slot: Slot, addrs: &[SocketAddr]) -> Option<Backend> {
    Some(Backend {
        slot,
        version: "test".into(),
        addrs: addrs.to_vec(),
    })
}

/// A proxy on 127.0.0.1:0, shut down when dropped.
pub struct Harness {
    pub proxy: Arc<Proxy>,
    pub shutdown: CancellationToken,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::with(ProxyOptions::default()).await
    }

    pub async fn with(opts: ProxyOptions) -> Harness {
        let shutdown = CancellationToken::new();
        let proxy = Proxy::bind_with(loopback(), opts, shutdown.clone())
            .await
            .expect("bind proxy");
        Harness { proxy, shutdown }
    }

    /// Routes service "web" (no hosts: the default) to `addr` on the blue slot.
    pub async fn route_to(&self, addr: SocketAddr) {
        use teal::router::Router;
        self.proxy
            .set_routes(&spec("web", &[], None), backend(Slot::Blue, &[addr]), None)
            .await
            .expect("routes install");
    }

    pub fn addr(&self) -> SocketAddr {
        use teal::router::Router;
        self.proxy.listen_addrs()[0]
    }
}

/// Which path serves a connection when the request under test comes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Path {
    Lean,
    Hyper,
}

pub const PATHS: [Path; 2] = [Path::Lean, Path::Hyper];

/// A connection to the proxy after one good request answered on it: a plain
/// GET stays on the lean path, a chunked POST moves it to hyper's. The app
/// must answer both 200 (`TestBackend`, `Recorder`).
pub async fn connection(h: &Harness, path: Path) -> TcpStream {
    connection_on(h, path, TcpSocket::new_v4().unwrap()).await
}

/// [`connection`] made from `socket` (set up as the test needs, e.g. a small
/// receive buffer).
pub async fn connection_on(h: &Harness, path: Path, socket: TcpSocket) -> TcpStream {
    let handed = h.proxy.connections_handed_to_hyper();
    let mut stream = socket.connect(h.addr()).await.unwrap();
    let first: &[u8] = match path {
        Path::Lean => b"GET / HTTP/1.1\r\nHost: app\r\n\r\n",
        Path::Hyper => {
            b"POST /echo HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        }
    };
    stream.write_all(first).await.unwrap();
    let reply = read_response(&mut stream).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let on_hyper = h.proxy.connections_handed_to_hyper() > handed;
    assert_eq!(on_hyper, path == Path::Hyper, "{path:?}");
    stream
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
