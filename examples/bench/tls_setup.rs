//! What the TLS rows share: one ECDSA P-256 certificate for `localhost`,
//! signed by a CA made for the run (rcgen), written once in the files each
//! proxy reads (teal and nginx: chain and key; HAProxy: both in one file);
//! HAProxy in front of the same backend; and a TLS client of the run's own
//! (tokio-rustls, trusting that CA only) for the probes the load tools cannot
//! make: whether a proxy resumes sessions, and idle TLS connections.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::client::Resumption;
use rustls::crypto::ring::kx_group;
use rustls::pki_types::{CertificateDer, ServerName};
use teal::load::LoadTls;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::footprint::first_answer;
use crate::setup::{Owned, free_port, wait_listening};

/// The name the certificate covers; it resolves to 127.0.0.1 only.
pub const HOST: &str = "localhost";

/// The run's certificate, in the files the proxies read.
pub struct Cert {
    /// The leaf, then the CA (PEM).
    pub chain: PathBuf,
    /// The leaf's ECDSA P-256 key (PKCS#8 PEM).
    pub key: PathBuf,
    /// Chain and key in one file, as HAProxy's `crt` wants them.
    pub combined: PathBuf,
    /// The CA: the one root the run's clients trust.
    root: CertificateDer<'static>,
}

impl Cert {
    pub fn make(dir: &Path) -> anyhow::Result<Cert> {
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "teal bench CA");
        let root = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);
        // rcgen's default key: ECDSA P-256 with SHA-256.
        let key = KeyPair::generate()?;
        let leaf = CertificateParams::new(vec![HOST.to_string()])?.signed_by(&key, &issuer)?;
        let chain_pem = format!("{}{}", leaf.pem(), root.pem());
        let cert = Cert {
            chain: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            combined: dir.join("haproxy.pem"),
            root: root.der().clone(),
        };
        std::fs::write(&cert.chain, &chain_pem)?;
        std::fs::write(&cert.key, key.serialize_pem())?;
        std::fs::write(&cert.combined, chain_pem + &key.serialize_pem())?;
        Ok(cert)
    }

    /// Client settings that trust the run's CA, offer `alpn`, and resume
    /// sessions (rustls's default: tickets and IDs, in memory) or not.
    pub fn client(
        &self,
        alpn: &[&[u8]],
        resume: bool,
    ) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.root.clone())?;
        #[allow(deprecated)] // ring, as teal's proxy (no post-quantum key exchange)
        let mut provider = rustls::crypto::ring::default_provider();
        // ring's default order puts P-384 first, and a client sends its key
        // share for the first group only: every handshake would pay P-384
        // (about 1 ms in ring and OpenSSL alike). Browsers and wrk send X25519.
        provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1];
        let provider = Arc::new(provider);
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        if !resume {
            config.resumption = Resumption::disabled();
        }
        Ok(Arc::new(config))
    }

    /// The load client's TLS: HTTP/1.1, resuming or not.
    pub fn load_tls(&self, resume: bool) -> anyhow::Result<LoadTls> {
        Ok(LoadTls {
            config: self.client(&[b"http/1.1"], resume)?,
            server_name: ServerName::try_from(HOST)?,
        })
    }
}

/// HAProxy in front of `backend`: `nbthread` equal to teal's threads, keep-alive
/// to the backend (`http-reuse always`), TLS with the run's certificate and
/// ALPN h2 and http/1.1, its TLS defaults otherwise (session cache and
/// tickets on).
pub struct Haproxy {
    pub listen: SocketAddr,
    pub process: Owned,
}

impl Haproxy {
    pub fn start(
        dir: &Path,
        backend: SocketAddr,
        threads: usize,
        cert: &Cert,
    ) -> anyhow::Result<Haproxy> {
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let conf = dir.join("haproxy.cfg");
        let text = format!(
            r#"global
  nbthread {threads}
  maxconn 8000

defaults
  mode http
  maxconn 8000
  timeout connect 5s
  timeout client 75s
  timeout server 75s
  timeout http-keep-alive 75s
  option forwardfor

frontend tls
  bind {listen} ssl crt {crt} alpn h2,http/1.1
  http-request set-header X-Forwarded-Proto https
  default_backend app

backend app
  http-reuse always
  server app {backend}
"#,
            crt = cert.combined.display()
        );
        std::fs::write(&conf, text)?;
        let child = Command::new(haproxy_bin())
            .args(["-db", "-f", &conf.display().to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("haproxy.log"))?)
            .spawn()
            .context("starting haproxy (apt-get install haproxy)")?;
        let haproxy = Haproxy {
            listen,
            process: Owned(child),
        };
        wait_listening(listen, "haproxy", &dir.join("haproxy.log"))?;
        Ok(haproxy)
    }

    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }
}

pub fn haproxy_bin() -> &'static str {
    if Path::new("/usr/sbin/haproxy").exists() {
        "/usr/sbin/haproxy"
    } else {
        "haproxy"
    }
}

/// HAProxy's version line, for the report.
pub fn haproxy_version() -> String {
    Command::new(haproxy_bin())
        .arg("-v")
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let line = text.lines().next().unwrap_or("").to_string();
            line.split(" - ").next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
}

/// A TLS connection to `addr` for [`HOST`] that has had one `GET /`
/// answered with 200 (so the session tickets sent after the handshake were
/// read too); None when any step failed or took over 10 s.
pub async fn one_request(
    connector: &TlsConnector,
    addr: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    let work = async {
        let tcp = TcpStream::connect(addr).await.ok()?;
        let tls = connector
            .connect(ServerName::try_from(HOST).ok()?, tcp)
            .await
            .ok()?;
        first_answer(tls).await
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .ok()
        .flatten()
}

/// Whether `addr` resumes a session: a second connection of one client,
/// after a first that read its answer, is a resumed handshake.
pub async fn resumes(cert: &Cert, addr: SocketAddr) -> anyhow::Result<bool> {
    let connector = TlsConnector::from(cert.client(&[b"http/1.1"], true)?);
    let first = one_request(&connector, addr)
        .await
        .context("a first TLS request")?;
    drop(first);
    let second = one_request(&connector, addr)
        .await
        .context("a second TLS request")?;
    Ok(second.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed))
}

/// Opens `n` TLS connections (full handshakes) to `addr`, each having had
/// one request answered, and keeps them; failures are counted, not retried.
pub async fn open_idle_tls(
    cert: &Cert,
    addr: SocketAddr,
    n: usize,
) -> anyhow::Result<(Vec<TlsStream<TcpStream>>, usize)> {
    let connector = TlsConnector::from(cert.client(&[b"http/1.1"], false)?);
    let mut open = Vec::with_capacity(n);
    let mut failed = 0;
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let batch =
            futures_util::future::join_all(chunk.iter().map(|_| one_request(&connector, addr)))
                .await;
        for conn in batch {
            match conn {
                Some(c) => open.push(c),
                None => failed += 1,
            }
        }
    }
    Ok((open, failed))
}
