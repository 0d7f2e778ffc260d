//! A load of TLS clients for the zero-downtime stories over HTTPS: each
//! client opens a TLS connection per request (trusting the test authority,
//! asking for one name), sends `GET /` with HTTP/1.1 and counts the outcome.
//! No retries: a failed handshake, a closed connection or a status other
//! than 200 is a failure. Bounded in time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::proxy::Conn;
use super::tls::TestCa;

/// The longest a load runs, whatever the test does.
const LIMIT: Duration = Duration::from_secs(120);
/// A client's pause after a failure, so a dead listener is not spun on.
const AFTER_FAILURE: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
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
}

impl TlsLoad {
    /// `clients` clients, each opening a connection per request to `addr`
    /// for the name `name`.
    pub fn start(ca: &Arc<TestCa>, addr: SocketAddr, name: &str, clients: usize) -> TlsLoad {
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + LIMIT;
        let clients = (0..clients)
            .map(|_| {
                let (ca, counts, stop) = (Arc::clone(ca), Arc::clone(&counts), Arc::clone(&stop));
                let name = name.to_string();
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let reply = async {
                            let tls = ca
                                .connect(addr, &name, &[b"http/1.1"])
                                .await
                                .map_err(|e| format!("handshake: {e}"))?;
                            Conn::over(tls).await?.get(&name, "/").await
                        }
                        .await;
                        match reply {
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
        };
        eprintln!("TLS load: {report:?}");
        report
    }
}
