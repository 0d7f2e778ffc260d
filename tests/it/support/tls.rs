//! TLS for the tests: a certificate authority made for the test (rcgen),
//! leaf certificates it signs written as PEM files a service's `tls` names,
//! and a client (tokio-rustls, ring) that trusts only that authority, with
//! the ALPN protocols and SNI the test asks for, alone or as the load
//! client's TLS.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::crypto::ring::kx_group;
use rustls::pki_types::{CertificateDer, ServerName};
use teal::load::LoadTls;
use teal::spec::{Config, ServiceSpec, TlsFiles, TlsListenSpec};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

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

    /// A client that trusts this authority only and offers `alpn`.
    pub fn connector(&self, alpn: &[&[u8]]) -> TlsConnector {
        TlsConnector::from(self.client_config(alpn))
    }

    /// TLS for the load client: this authority's clients, offering `alpn`
    /// (`h2` first: HTTP/2), asking for `name` by SNI.
    pub fn load_tls(&self, name: &str, alpn: &[&[u8]]) -> LoadTls {
        LoadTls {
            config: self.client_config(alpn),
            server_name: ServerName::try_from(name.to_string()).unwrap(),
        }
    }

    /// Client settings that trust this authority only and offer `alpn`
    /// (rustls's defaults otherwise: session resumption on).
    fn client_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.root.clone()).unwrap();
        #[allow(deprecated)] // ring, as the proxy: see teal_proxy's tls module
        let mut provider = rustls::crypto::ring::default_provider();
        // X25519 first, as browsers: ring's default sends a P-384 key share.
        provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1];
        let provider = Arc::new(provider);
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A TLS connection to `addr` asking for `name` (an IP address: no SNI),
    /// verified against this authority; the handshake's error otherwise.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        name: &str,
        alpn: &[&[u8]],
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from(name.to_string()).unwrap();
        self.connector(alpn).connect(name, tcp).await
    }
}

/// The certificate the server presented on `tls`.
pub fn served_cert(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    let certs = tls.get_ref().1.peer_certificates().expect("a certificate");
    certs[0].clone().into_owned()
}

/// A daemon's setup with one TLS service: `web` (two demo-app instances,
/// drain timeout 3 s) for `host` with a leaf of `ca` written to `dir`, and a
/// TLS listener (redirect on) at a free loopback port.
pub struct TlsWeb {
    pub spec: ServiceSpec,
    pub config: Config,
    pub tls_addr: SocketAddr,
    pub leaf: Leaf,
}

impl TlsWeb {
    pub fn new(dir: &Path, ca: &TestCa, host: &str) -> TlsWeb {
        let leaf = ca.leaf(dir, "web", &[host]);
        let mut spec = super::demo_service("web", dir, 2);
        spec.hosts = vec![host.into()];
        spec.tls = Some(leaf.files.clone());
        spec.drain.timeout = Duration::from_secs(3);
        let mut config = super::config(dir, vec![]);
        let tls_addr = super::proxy::unused_addr();
        config.proxy.tls = Some(TlsListenSpec {
            listen: tls_addr,
            redirect: true,
        });
        TlsWeb {
            spec,
            config,
            tls_addr,
            leaf,
        }
    }
}
