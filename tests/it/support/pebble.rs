//! Pebble, Let's Encrypt's test ACME server, for real orders with no
//! internet: `pebble-challtestsrv` answers 127.0.0.1 for every name (its DNS
//! on a loopback port, everything else it serves off), and `pebble` on
//! loopback ports validates HTTP-01 on `http_port` (the plain listener of
//! the teal under test, so that port is chosen before pebble starts), with
//! its own HTTPS certificate signed by a [`TestCa`] whose root the test
//! hands teal as `acme_ca`. The issuing root comes from pebble's management
//! port (`/roots/0`), and the orders pebble accepted are counted from its
//! log. Both processes are killed on drop.
//!
//! With CI=true a missing pebble fails the test ([`super::require`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::tls::{TestCa, connect_trusting};
use super::{eventually, free_addr};

/// What a test asks of pebble.
#[derive(Debug, Clone, Default)]
pub struct PebbleSpec {
    /// Where pebble's VA sends HTTP-01 validation requests (on 127.0.0.1).
    pub http_port: u16,
    /// `certificateValidityPeriod` in seconds; None: pebble's default.
    pub validity_secs: Option<u64>,
    /// Names pebble refuses to issue for (`domainBlocklist`).
    pub blocked: Vec<String>,
}

pub struct Pebble {
    pebble: Child,
    challtestsrv: Child,
    /// The ACME directory URL.
    pub directory: String,
    /// The PEM root pebble's own HTTPS chains to (teal's `acme_ca`).
    pub https_ca_file: PathBuf,
    /// The root pebble issues under (fetched at start).
    pub root: CertificateDer<'static>,
    log: PathBuf,
}

/// Whether both programs are installed; with CI=true, panics when not.
pub fn required() -> bool {
    let found = ["pebble", "pebble-challtestsrv"].iter().all(|program| {
        Command::new(program)
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    });
    super::require("pebble (Debian package pebble)", found)
}

impl Pebble {
    /// Starts challtestsrv and pebble with their files in `dir`, and waits
    /// (bounded) until pebble's management port gives its root.
    pub async fn start(dir: &Path, spec: &PebbleSpec) -> Pebble {
        let dns = free_addr();
        let challtest_management = free_addr();
        let challtestsrv = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &dns.to_string()])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &challtest_management.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pebble-challtestsrv");

        let ca = TestCa::new();
        let https = ca.leaf(dir, "pebble-https", &["localhost"]);
        let https_ca_file = dir.join("pebble-ca.pem");
        std::fs::write(&https_ca_file, ca.root_pem()).unwrap();
        let listen = free_addr();
        let management = free_addr();
        let mut config = serde_json::json!({
            "listenAddress": listen.to_string(),
            "managementListenAddress": management.to_string(),
            "certificate": https.files.cert,
            "privateKey": https.files.key,
            "httpPort": spec.http_port,
            "tlsPort": free_addr().port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "domainBlocklist": spec.blocked,
        });
        if let Some(secs) = spec.validity_secs {
            config["certificateValidityPeriod"] = secs.into();
        }
        let config_file = dir.join("pebble.json");
        std::fs::write(
            &config_file,
            serde_json::to_vec_pretty(&serde_json::json!({ "pebble": config })).unwrap(),
        )
        .unwrap();
        let log = dir.join("pebble.log");
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(&config_file)
            .args(["-dnsserver", &dns.to_string()])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pebble");

        let mut root = None;
        let up = eventually(Duration::from_secs(20), async || {
            root = fetch_root(&ca, management).await;
            root.is_some()
        })
        .await;
        let pebble = Pebble {
            pebble,
            challtestsrv,
            directory: format!("https://localhost:{}/dir", listen.port()),
            https_ca_file,
            root: root.unwrap_or_else(|| CertificateDer::from(Vec::new())),
            log,
        };
        assert!(up, "pebble came up: {}", pebble.log_text());
        pebble
    }

    /// The `[proxy.tls]` lines that point teal at this pebble.
    pub fn acme_toml(&self, retry: &str) -> String {
        format!(
            "acme_email = \"ops@example.com\"\nacme_directory = \"{}\"\nacme_ca = {:?}\nacme_retry = \"{retry}\"\n",
            self.directory, self.https_ca_file
        )
    }

    /// Orders pebble accepted so far (one log line each).
    pub fn orders(&self) -> usize {
        self.log_text()
            .lines()
            .filter(|line| line.contains(ORDER_LINE))
            .count()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// What pebble logs once per new order it stored.
const ORDER_LINE: &str = "Added order";

impl Pebble {
    /// Kills both processes (an ACME server that went away).
    pub fn stop(&mut self) {
        for child in [&mut self.pebble, &mut self.challtestsrv] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `GET /roots/0` on pebble's management port (HTTPS, verified against the
/// test's CA): the issuing root, once pebble is up.
async fn fetch_root(ca: &TestCa, management: SocketAddr) -> Option<CertificateDer<'static>> {
    let mut tls = connect_trusting(&ca.root, management, "localhost", &[b"http/1.1"])
        .await
        .ok()?;
    tls.write_all(b"GET /roots/0 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut reply)).await;
    let text = String::from_utf8_lossy(&reply);
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    CertificateDer::from_pem_slice(body.as_bytes()).ok()
}
