//! TLS termination on the TLS listener: rustls with the `ring` provider, TLS
//! 1.2 and 1.3, ALPN `h2` and `http/1.1`, and the certificate chosen by SNI
//! among the services' hosts.
//!
//! The certificate of a service lives in its `ServiceRoutes` (`cert`), so the
//! route table is also the certificate table: installing routes swaps both
//! in one atomic store, and a handshake loads the certificate once and keeps
//! it for the connection's life. An SNI no service names (or no SNI) fails
//! the handshake: there is no default certificate, so one service's names
//! never leak to a client asking for another.
//!
//! A TLS connection is served by hyper's path (`crate::hyper`): HTTP/2 when
//! ALPN picked `h2`, HTTP/1.1 otherwise. The lean path reads plain sockets
//! only. `cert` reads and checks the user's PEM files.

mod cert;

pub use cert::{CertError, ServiceCert};

use std::net::IpAddr;
use std::sync::{Arc, OnceLock, Weak};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, crypto::CryptoProvider};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::Proxy;
use crate::client::{ClientAddr, ClientIo, ClientStream, Gauge, Stop};
use crate::routes::ListenerKind;

/// The one crypto provider teal uses: ring, which builds without aws-lc's
/// C and CMake toolchain. rustls 0.23.48 deprecated it for lacking the
/// post-quantum key exchange (X25519MLKEM768) that only aws-lc-rs offers;
/// clients fall back to X25519.
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Picks the certificate of the service that names the SNI host, in the
/// proxy's route table.
#[derive(Debug)]
pub(crate) struct BySni {
    /// Set once the proxy exists (its settings are made before it).
    proxy: OnceLock<Weak<Proxy>>,
}

impl BySni {
    pub(crate) fn new() -> Arc<BySni> {
        Arc::new(BySni {
            proxy: OnceLock::new(),
        })
    }

    /// Resolves from `proxy`'s route table from now on.
    pub(crate) fn serve(&self, proxy: &Arc<Proxy>) {
        let _ = self.proxy.set(Arc::downgrade(proxy));
    }
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?;
        let proxy = self.proxy.get()?.upgrade()?;
        let table = proxy.table.load();
        table.named(name)?.cert.load_full()
    }
}

/// The TLS listener's settings: ring, TLS 1.2 and 1.3, no client
/// certificates, certificates by SNI, ALPN h2 then http/1.1.
pub(crate) fn acceptor(resolver: Arc<BySni>) -> Result<TlsAcceptor, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves one connection accepted on the TLS listener: the handshake, within
/// the header read timeout (a client that sends nothing, or too slowly, is
/// closed then), then hyper's HTTP/2 or HTTP/1.1 until it closes. A TLS
/// connection never moves to a successor: during a hand-over it finishes its
/// requests and closes.
pub(crate) async fn serve(
    proxy: Arc<Proxy>,
    acceptor: TlsAcceptor,
    stream: TcpStream,
    client: IpAddr,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let _open = Gauge::enter(&proxy.conns.open);
    let handshake = tokio::select! {
        done = tokio::time::timeout(proxy.opts.header_read_timeout, acceptor.accept(stream)) => done,
        _ = stop.cancelled() => return,
    };
    let tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%error, %client, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%client, "TLS handshake timed out");
            return;
        }
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = ClientIo::over(
        bytes::Bytes::new(),
        ClientStream::Tls(Box::new(tls)),
        proxy.opts.send_timeout,
    );
    let addr = ClientAddr::over_tls(client);
    let stop = Stop {
        token: &stop,
        handing_over: &proxy.handing_over,
    };
    if h2 {
        crate::hyper::serve_h2(Arc::clone(&proxy), addr, ListenerKind::Tls, io, stop).await;
    } else {
        crate::hyper::serve_http1(Arc::clone(&proxy), addr, ListenerKind::Tls, io, stop).await;
    }
}
