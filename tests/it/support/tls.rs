//! TLS for the tests: a certificate authority made for the test (rcgen),
//! leaf certificates it signs written as PEM files a service's `tls` names,
//! and a client (tokio-rustls, ring) that trusts only that authority, with
//! the ALPN protocols and SNI the test asks for.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use teal::spec::TlsFiles;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::proxy::Conn;

/// A certificate authority of the test's own.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// Its self-signed certificate: the one root clients trust.
    pub root: CertificateDer<'static>,
    root_pem: String,
}

/// A leaf certificate written to disk: its files and its DER (to compare with
/// what a client is served).
pub struct Leaf {
    pub files: TlsFiles,
    pub der: CertificateDer<'static>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "teal test CA");
        let root = params.self_signed(&key).unwrap();
        TestCa {
            root: root.der().clone(),
            root_pem: root.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `names`, signed by this authority, written to
    /// `dir/NAME.pem` (the chain: leaf, then the authority) and `dir/NAME.key`.
    pub fn leaf(&self, dir: &Path, name: &str, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let files = TlsFiles {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, format!("{}{}", cert.pem(), self.root_pem)).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        Leaf {
            files,
            der: cert.der().clone(),
        }
    }

    /// Its self-signed certificate as PEM (a file a config can name).
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// A TLS connection to `addr` asking for `name` (an IP address: no SNI),
    /// verified against this authority; the handshake's error otherwise.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        name: &str,
        alpn: &[&[u8]],
    ) -> std::io::Result<TlsStream<TcpStream>> {
        connect_trusting(&self.root, addr, name, alpn).await
    }
}

/// A client that trusts `root` only and offers `alpn`.
pub fn connector_trusting(root: &CertificateDer<'static>, alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    #[allow(deprecated)] // ring, as the proxy: see teal_proxy's tls module
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

/// A TLS connection to `addr` asking for `name`, verified against `root`
/// only; the handshake's error otherwise.
pub async fn connect_trusting(
    root: &CertificateDer<'static>,
    addr: SocketAddr,
    name: &str,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_string()).unwrap();
    connector_trusting(root, alpn).connect(name, tcp).await
}

/// The certificate the server presented on `tls`.
pub fn served_cert(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    let certs = tls.get_ref().1.peer_certificates().expect("a certificate");
    certs[0].clone().into_owned()
}

/// What a [`TlsLoad`] counted.
#[derive(Debug, Default)]
pub struct TlsCounts {
    pub ok: u64,
    /// Handshakes, connections or requests that failed, and non-200 answers.
    pub failed: u64,
    /// Keep-alive connections that had to be opened again.
    pub reconnects: u64,
}

/// HTTP/1.1 clients over TLS: some keep their connection, some open one
/// per request; every request is counted and none is retried. Bounded to
/// two minutes.
pub struct TlsLoad {
    stop: Arc<std::sync::atomic::AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<TlsCounts>>,
}

impl TlsLoad {
    /// `keepalive` and `fresh` clients of `addr` asking for `name` (a host
    /// of the app they GET `/` from), trusting `root` only.
    pub fn start(
        root: &CertificateDer<'static>,
        addr: SocketAddr,
        name: &str,
        keepalive: usize,
        fresh: usize,
    ) -> TlsLoad {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let kinds = std::iter::repeat_n(true, keepalive).chain(std::iter::repeat_n(false, fresh));
        let clients = kinds
            .map(|keep| {
                let (root, stop, name) = (root.clone(), Arc::clone(&stop), name.to_string());
                tokio::spawn(async move {
                    let mut counts = TlsCounts::default();
                    let mut conn: Option<Conn> = None;
                    while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                        if conn.as_ref().is_none_or(Conn::is_closed) {
                            if keep && conn.is_some() {
                                counts.reconnects += 1;
                            }
                            let opened =
                                match connect_trusting(&root, addr, &name, &[b"http/1.1"]).await {
                                    Ok(tls) => Conn::over(tls).await,
                                    Err(error) => Err(error.to_string()),
                                };
                            match opened {
                                Ok(opened) => conn = Some(opened),
                                Err(error) => {
                                    eprintln!("connection failed: {error}");
                                    counts.failed += 1;
                                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                                    continue;
                                }
                            }
                        }
                        match conn.as_mut().expect("connected").get(&name, "/").await {
                            Ok(reply) if reply.status == 200 => counts.ok += 1,
                            other => {
                                eprintln!(
                                    "request failed: {:?}",
                                    other.map(|r| (r.status, r.body))
                                );
                                counts.failed += 1;
                            }
                        }
                        if !keep {
                            conn = None;
                        }
                    }
                    counts
                })
            })
            .collect();
        TlsLoad { stop, clients }
    }

    /// Stops the clients and sums what they counted.
    pub async fn stop(self) -> TlsCounts {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut total = TlsCounts::default();
        for client in self.clients {
            let counts = client.await.unwrap();
            total.ok += counts.ok;
            total.failed += counts.failed;
            total.reconnects += counts.reconnects;
        }
        eprintln!("TLS load: {total:?}");
        total
    }
}
