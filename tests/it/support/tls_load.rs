//! The load client over TLS for the zero-downtime stories over HTTPS, in the
//! words those tests use: some clients keep their connection (keep-alive),
//! others open one per request; each trusts one root only, asks for one
//! name and sends `GET /` with HTTP/1.1. It is `teal::load` (the one load
//! client) with TLS on: no retries, a failed handshake, a broken connection
//! or a status other than 2xx is a failure, and a keep-alive client that has
//! to connect again counts a reconnect. Bounded in time.

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use teal::load::{Load, LoadSpec, LoadTls};

use super::tls::client_config_trusting;

/// The longest a load runs, whatever the test does.
const LIMIT: Duration = Duration::from_secs(120);

/// TLS clients running until [`TlsLoad::finish`].
pub struct TlsLoad {
    load: Load,
    keepalive: u64,
}

/// What the clients counted.
#[derive(Debug)]
pub struct TlsReport {
    pub ok: u64,
    pub failed: u64,
    /// Keep-alive connections that had to be opened again.
    pub reconnects: u64,
}

impl TlsLoad {
    /// `keepalive` clients that keep their connection and `fresh` clients
    /// that open one per request, to `addr` for the name `name`, trusting
    /// `root` only.
    pub fn start(
        root: &CertificateDer<'static>,
        addr: SocketAddr,
        name: &str,
        keepalive: usize,
        fresh: usize,
    ) -> TlsLoad {
        let load = Load::start(LoadSpec {
            host: Some(name.to_string()),
            tls: Some(LoadTls {
                config: client_config_trusting(root, &[b"http/1.1"]),
                server_name: ServerName::try_from(name.to_string()).unwrap(),
            }),
            keepalive_connections: keepalive,
            fresh_connection_workers: fresh,
            max_duration: LIMIT,
            ..LoadSpec::new(addr)
        });
        TlsLoad {
            load,
            keepalive: keepalive as u64,
        }
    }

    /// Requests answered 2xx so far.
    pub fn ok(&self) -> u64 {
        self.load.snapshot().ok
    }

    /// Waits (bounded by `limit`) until `n` more requests were answered 2xx.
    pub async fn answered_more(&self, n: u64, limit: Duration) -> bool {
        let target = self.ok() + n;
        super::eventually(limit, async || self.ok() >= target).await
    }

    /// Stops the clients, lets the requests in flight finish, and reports.
    pub async fn finish(self) -> TlsReport {
        let report = self.load.stop().await;
        if report.failed() > 0 {
            eprintln!(
                "TLS load failures: statuses {:?}, errors {:?}",
                report.statuses, report.errors
            );
        }
        let report = TlsReport {
            ok: report.ok,
            failed: report.failed(),
            reconnects: report.keepalive_connects.saturating_sub(self.keepalive),
        };
        eprintln!("TLS load: {report:?}");
        report
    }
}
