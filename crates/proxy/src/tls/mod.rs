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
//! A TLS connection is served by hyper's path (`crate::hyper`, from
//! `listener::serve_tls`): HTTP/2 when ALPN picked `h2`, HTTP/1.1 otherwise.
//! The lean path reads plain sockets only. `cert` reads and checks the
//! user's PEM files.

mod cert;

pub use cert::{CertError, ServiceCert};

use std::sync::{Arc, OnceLock, Weak};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, crypto::CryptoProvider};
use tokio_rustls::TlsAcceptor;

use crate::Proxy;

/// The one crypto provider teal uses: ring, which builds without aws-lc's
/// C and CMake toolchain. rustls 0.23.48 deprecated it for lacking the
/// post-quantum key exchange (X25519MLKEM768) that only aws-lc-rs offers;
/// clients fall back to X25519.
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// ring's ticketer: ChaCha20-Poly1305, a random key rotated every 6 hours.
fn ticketer() -> Result<Arc<dyn rustls::server::ProducesTickets>, rustls::Error> {
    rustls::crypto::ring::Ticketer::new()
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
/// certificates, certificates by SNI, ALPN h2 then http/1.1, and session
/// resumption by stateless tickets.
///
/// Tickets: rustls's default keeps resumable sessions in a cache of 256
/// entries (TLS 1.2 session IDs, TLS 1.3 tickets that name a cache entry),
/// so past 256 recent clients a returning one pays a full handshake. nginx
/// (`ssl_session_tickets on`) and HAProxy (tickets on, beside a 20,000-entry
/// cache) issue stateless tickets by default, so teal does too: the
/// session is sealed in the ticket with a key of this process (rotated every
/// 6 hours), and the cache stays for TLS 1.2 clients without ticket support.
/// A ticket from before `teal serve --upgrade` or a restart is refused
/// quietly: that client gets a full handshake.
pub(crate) fn acceptor(resolver: Arc<BySni>) -> Result<TlsAcceptor, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ticketer = ticketer()?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
