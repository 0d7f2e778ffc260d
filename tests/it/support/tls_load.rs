//! A load of TLS clients for the zero-downtime stories over HTTPS: some
//! clients keep their connection (keep-alive), others open one per request;
//! each trusts one root only, asks for one name, sends `GET /` with HTTP/1.1
//! and counts the outcome. No retries: a failed handshake, a closed
//! connection or a status other than 200 is a failure, and a keep-alive
//! client that has to connect again counts a reconnect. Bounded in time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;

use super::proxy::Conn;
use super::tls::connect_trusting;

/// The longest a load runs, whatever the test does.
const LIMIT: Duration = Duration::from_secs(120);
/// A client's pause after a failure, so a dead listener is not spun on.
const AFTER_FAILURE: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
    reconnects: AtomicU64,
}

/// TLS clients running until [`TlsLoad::finish`].
pub struct TlsLoad {
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<()>>,
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
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + LIMIT;
        let kinds = std::iter::repeat_n(true, keepalive).chain(std::iter::repeat_n(false, fresh));
        let clients = kinds
            .map(|keep| {
                let (root, counts, stop) = (root.clone(), Arc::clone(&counts), Arc::clone(&stop));
                let name = name.to_string();
                tokio::spawn(async move {
                    let mut conn: Option<Conn> = None;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        if conn.as_ref().is_none_or(Conn::is_closed) {
                            if keep && conn.is_some() {
                                counts.reconnects.fetch_add(1, Ordering::Relaxed);
                            }
                            let opened =
                                match connect_trusting(&root, addr, &name, &[b"http/1.1"]).await {
                                    Ok(tls) => Conn::over(tls).await,
                                    Err(error) => Err(format!("handshake: {error}")),
                                };
                            match opened {
                                Ok(opened) => conn = Some(opened),
                                Err(error) => {
                                    eprintln!("TLS connection failed: {error}");
                                    counts.failed.fetch_add(1, Ordering::Relaxed);
                                    tokio::time::sleep(AFTER_FAILURE).await;
                                    continue;
                                }
                            }
                        }
                        match conn.as_mut().expect("connected").get(&name, "/").await {
                            Ok(reply) if reply.status == 200 => {
                                counts.ok.fetch_add(1, Ordering::Relaxed);
                            }
                            other => {
                                eprintln!(
                                    "TLS request failed: {:?}",
                                    other.map(|r| (r.status, r.body))
                                );
                                counts.failed.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(AFTER_FAILURE).await;
                            }
                        }
                        if !keep {
                            conn = None;
                        }
                    }
                })
            })
            .collect();
        TlsLoad {
            counts,
            stop,
            clients,
        }
    }

    /// Requests answered 200 so far.
    pub fn ok(&self) -> u64 {
        self.counts.ok.load(Ordering::Relaxed)
    }

    /// Waits (bounded by `limit`) until `n` more requests were answered 200.
    pub async fn answered_more(&self, n: u64, limit: Duration) -> bool {
        let target = self.ok() + n;
        super::eventually(limit, async || self.ok() >= target).await
    }

    /// Stops the clients, lets the requests in flight finish, and reports.
    pub async fn finish(self) -> TlsReport {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.await.expect("a TLS client");
        }
        let report = TlsReport {
            ok: self.counts.ok.load(Ordering::Relaxed),
            failed: self.counts.failed.load(Ordering::Relaxed),
            reconnects: self.counts.reconnects.load(Ordering::Relaxed),
        };
        eprintln!("TLS load: {report:?}");
        report
    }
}
