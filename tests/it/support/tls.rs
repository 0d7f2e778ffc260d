//! TLS for the tests: a certificate authority made for the test (rcgen),
//! leaf certificates it signs written as PEM files a service's `tls` names,
//! and a client (tokio-rustls, ring) that trusts only that authority, with
//! the ALPN protocols and SNI the test asks for, alone or as the load
//! client's TLS; HTTP/2 over such a client, and the plain listener's
//! redirect checked.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::crypto::ring::kx_group;
use rustls::pki_types::{CertificateDer, ServerName};
use teal::load::LoadTls;
use teal::spec::{Config, ServiceSpec, TlsFiles, TlsListenSpec};
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

    /// Makes `spec` a TLS service for `name` alone, with a leaf this authority
    /// signed (files in `dir`).
    pub fn serve(&self, spec: &mut ServiceSpec, dir: &Path, name: &str) -> Leaf {
        let leaf = self.leaf(dir, &spec.name, &[name]);
        spec.hosts = vec![name.into()];
        spec.tls = Some(leaf.files.clone());
        leaf
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

    /// Client settings that trust this authority only and offer `alpn`.
    fn client_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        client_config_trusting(&self.root, alpn)
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
    TlsConnector::from(client_config_trusting(root, alpn))
}

/// Client settings that trust `root` only and offer `alpn` (rustls's
/// defaults otherwise: session resumption on), with X25519 first as browsers
/// (ring's default provider sends a P-384 key share).
pub fn client_config_trusting(
    root: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    #[allow(deprecated)] // ring, as the proxy: see teal_proxy's tls module
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1];
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
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

impl TestCa {
    /// An HTTP/1.1 connection over TLS to `addr` for `name`, whose handshake
    /// must present `leaf` (verified up to this authority and for `name`).
    pub async fn conn_presenting(&self, addr: SocketAddr, name: &str, leaf: &Leaf) -> Conn {
        let tls = self
            .connect(addr, name, &[b"http/1.1"])
            .await
            .unwrap_or_else(|e| panic!("handshake for {name}: {e}"));
        assert!(
            served_cert(&tls) == leaf.der,
            "{name} got another certificate"
        );
        Conn::over(tls).await.unwrap()
    }
}

/// [`super::served::demo_web_toml`] as a TLS service for `web.test` with
/// `leaf`'s files.
pub fn tls_web_toml(preview: &str, leaf: &Leaf) -> String {
    super::served::demo_web_toml(preview).replace(
        "version = \"1.0.0\"\n",
        &format!(
            "version = \"1.0.0\"\nhosts = [\"web.test\"]\ntls = {{ cert = {:?}, key = {:?} }}\n",
            leaf.files.cert, leaf.files.key
        ),
    )
}

/// The certificate the server presented on `tls`.
pub fn served_cert(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    let certs = tls.get_ref().1.peer_certificates().expect("a certificate");
    certs[0].clone().into_owned()
}

/// An HTTP/2 client on `tls`, which must have negotiated `h2` by ALPN.
pub async fn h2_client(tls: TlsStream<TcpStream>) -> SendRequest<Empty<Bytes>> {
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("an HTTP/2 connection");
    tokio::spawn(conn);
    sender
}

/// `GET https://HOST/headers` over HTTP/2, answered 200: the request head the
/// app saw (`TestBackend`), lowercased.
pub async fn h2_headers(sender: &mut SendRequest<Empty<Bytes>>, host: &str) -> String {
    let req = Request::get(format!("https://{host}/headers"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(super::proxy::EXCHANGE, sender.send_request(req))
        .await
        .expect("a response in time")
        .expect("a response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).to_ascii_lowercase()
}

/// Plain HTTP to `plain` for `host` (a TLS service's) gets 308 to
/// `https://HOST:TLS_PORT` with the path and query.
pub async fn assert_redirected(plain: SocketAddr, host: &str, tls_port: u16) {
    let request = format!("GET /x?y=1 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let reply = super::proxy::raw_exchange(plain, request.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 308"), "{reply}");
    let location = format!("location: https://{host}:{tls_port}/x?y=1\r\n");
    assert!(reply.to_ascii_lowercase().contains(&location), "{reply}");
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
            acme: None,
        });
        TlsWeb {
            spec,
            config,
            tls_addr,
            leaf,
        }
    }
}
