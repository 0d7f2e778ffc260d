//! Prometheus `/metrics` on the admin listener: per service and slot, the requests,
//! 5xx answers, upstream failures, client errors and in-flight requests the
//! router observed, and which slot is live at which version; the builtin proxy's
//! client connections, active and parked, and the requests it refused for a
//! malformed head.
//!
//! Numbers are read from the router at scrape time (a prometheus-client
//! `Collector`), so the request path pays nothing for metrics. This module does
//! not count anything itself. The counters carry over an upgrade of the daemon
//! ([`Carried`]): what the previous daemons counted is added to this one's.
//!
//! The admin listener has the protections the proxy's listeners have: a
//! request head must arrive within [`HEADER_TIMEOUT`] (which also bounds an
//! idle keep-alive connection), at most [`MAX_CONNECTIONS`] connections are
//! served at once (more are closed as soon as they are accepted), and the
//! accept loop pauses instead of spinning when it runs out of file
//! descriptors (`crate::AcceptPause`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::AcceptPause;
use crate::deploy::Deployer;
use crate::router::TrafficStats;
use crate::slot::Slot;

/// How long a client has to send a whole request head, counted from the
/// connection's start or the end of the previous response (so it also bounds
/// an idle keep-alive connection). The proxy's listeners use the same.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Admin connections served at once. A scraper needs one; a flood of idle
/// connections beyond this is closed as it is accepted, so it cannot take the
/// file descriptors production needs.
pub const MAX_CONNECTIONS: usize = 64;

/// Reads the router's per-slot counters on every scrape, plus what earlier
/// daemons counted.
struct Traffic {
    deployer: Arc<Deployer>,
    carried: Arc<Carried>,
}

/// The counters of one slot of a service, as a daemon hands them to its
/// successor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SlotCounts {
    pub service: String,
    pub slot: Slot,
    pub requests: u64,
    pub responses_5xx: u64,
    pub upstream_failures: u64,
    #[serde(default)]
    pub client_errors: u64,
}

/// What the daemons this one took over from had counted, per service and
/// slot (their own counts plus what they had carried). Exported counters are
/// these plus the router's, so they do not fall back to zero at an upgrade.
#[derive(Debug, Default)]
pub struct Carried(Mutex<BTreeMap<(String, Slot), SlotCounts>>);

impl Carried {
    /// Takes a predecessor's totals (they only grow: sent once with the
    /// sockets, and again, final, when it is done).
    pub fn replace(&self, totals: Vec<SlotCounts>) {
        let mut carried = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for counts in totals {
            carried.insert((counts.service.clone(), counts.slot), counts);
        }
    }

    /// The counts of `service`'s `slot`: carried plus the router's `stats`.
    fn add(&self, service: &str, slot: Slot, stats: &TrafficStats) -> SlotCounts {
        let carried = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let base = carried.get(&(service.to_string(), slot));
        let was = |count: fn(&SlotCounts) -> u64| base.map_or(0, count);
        SlotCounts {
            service: service.to_string(),
            slot,
            requests: was(|c| c.requests) + stats.requests,
            responses_5xx: was(|c| c.responses_5xx) + stats.responses_5xx,
            upstream_failures: was(|c| c.upstream_failures) + stats.upstream_failures,
            client_errors: was(|c| c.client_errors) + stats.client_errors,
        }
    }

    /// Every service's and slot's counts now, for a successor.
    pub fn totals(&self, deployer: &Deployer) -> Vec<SlotCounts> {
        let router = deployer.router();
        let mut totals = Vec::new();
        for record in deployer.records() {
            for slot in Slot::ALL {
                let stats = router.stats(&record.spec.name, slot);
                totals.push(self.add(&record.spec.name, slot, &stats));
            }
        }
        totals
    }
}

impl std::fmt::Debug for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Traffic")
    }
}

type Labels = Vec<(&'static str, String)>;

/// A counter family: name, help, and how to read it from a slot's stats.
type CounterFamily = (&'static str, &'static str, fn(&SlotCounts) -> u64);

impl Collector for Traffic {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let router = self.deployer.router();
        let mut rows = Vec::new();
        for record in self.deployer.records() {
            for slot in Slot::ALL {
                let labels: Labels = vec![
                    ("service", record.spec.name.clone()),
                    ("slot", slot.to_string()),
                ];
                let stats = router.stats(&record.spec.name, slot);
                let counts = self.carried.add(&record.spec.name, slot, &stats);
                rows.push((labels, stats, counts, record.active_slot == Some(slot)));
            }
        }
        let counters: [CounterFamily; 4] = [
            (
                "teal_requests",
                "Requests routed to the slot's current pool",
                |s| s.requests,
            ),
            ("teal_responses_5xx", "5xx answers from the slot", |s| {
                s.responses_5xx
            }),
            (
                "teal_upstream_failures",
                "Requests that got no answer from the slot's instances",
                |s| s.upstream_failures,
            ),
            (
                "teal_client_errors",
                "Requests to the slot the client broke (a malformed, cut-short or stalled body): answered 400 or 408 or closed, never counted as failures",
                |s| s.client_errors,
            ),
        ];
        for (name, help, value) in counters {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (labels, _, counts, _) in &rows {
                ConstCounter::new(value(counts)).encode(family.encode_family(labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "teal_in_flight",
            "Requests and upgraded connections in flight to the slot",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (labels, stats, _, _) in &rows {
            ConstGauge::new(stats.in_flight as i64).encode(family.encode_family(labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "teal_slot_live",
            "1 for the slot production traffic goes to",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (labels, _, _, live) in &rows {
            ConstGauge::new(i64::from(*live)).encode(family.encode_family(labels)?)?;
        }
        if let Some(conns) = router.client_connections() {
            let mut family = encoder.encode_descriptor(
                "teal_client_connections",
                "Client connections open to the proxy: active, or parked (idle, no buffers)",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            let active = conns.open.saturating_sub(conns.parked);
            for (state, n) in [("active", active), ("parked", conns.parked)] {
                let labels: Labels = vec![("state", state.to_string())];
                ConstGauge::new(n as i64).encode(family.encode_family(&labels)?)?;
            }
            let family = encoder.encode_descriptor(
                "teal_malformed_requests",
                "Requests refused before routing for a malformed or too large head (400 or 431)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            ConstCounter::new(conns.malformed_requests).encode(family)?;
            if let Some(dropped) = conns.access_log_dropped_lines {
                let family = encoder.encode_descriptor(
                    "teal_access_log_dropped_lines",
                    "Access log lines dropped because the writer fell behind (never waited for)",
                    None,
                    prometheus_client::metrics::MetricType::Counter,
                )?;
                ConstCounter::new(dropped).encode(family)?;
            }
        }
        Ok(())
    }
}

/// Serves `/metrics` on the admin listener (bound by the daemon, or handed
/// over by its predecessor) until `shutdown`.
pub async fn serve(
    listener: std::net::TcpListener,
    deployer: Arc<Deployer>,
    carried: Arc<Carried>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> std::io::Result<SocketAddr> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let bound = listener.local_addr()?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Traffic { deployer, carried }));
    let registry = Arc::new(registry);
    let connections = tracker.clone();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tracker.spawn(async move {
        let mut pause = AcceptPause::new("admin");
        loop {
            let stream = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        let wait = pause.after(&error);
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(wait) => continue,
                        }
                    }
                },
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                // Full: closed at once, so a flood of idle connections holds
                // no more descriptors than the limit.
                tracing::debug!(
                    "admin listener: connection limit reached, closing a new connection"
                );
                continue;
            };
            connections.spawn(serve_connection(
                stream,
                registry.clone(),
                shutdown.clone(),
                slot,
            ));
        }
    });
    Ok(bound)
}

/// Serves one admin connection until it closes, idles out or the daemon
/// stops; `_slot` is its place under [`MAX_CONNECTIONS`].
async fn serve_connection(
    stream: TcpStream,
    registry: Arc<Registry>,
    stop: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let registry = registry.clone();
        async move { Ok::<_, Infallible>(answer(req.uri().path(), &registry)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.cancelled() => conn.as_mut().graceful_shutdown(),
    }
}

fn answer(path: &str, registry: &Registry) -> Response<Full<Bytes>> {
    if path != "/metrics" {
        let mut resp = Response::new(Full::new(Bytes::from_static(b"not found\n")));
        *resp.status_mut() = StatusCode::NOT_FOUND;
        return resp;
    }
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        let mut resp = Response::new(Full::new(Bytes::from_static(b"encoding failed\n")));
        *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return resp;
    }
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    resp
}
