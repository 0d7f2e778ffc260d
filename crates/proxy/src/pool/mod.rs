//! Pools: the endpoints of one slot of one service (one per instance address),
//! how a request picks one, traffic counters, and passive ejection. One unit
//! with what hangs on a pool: the in-flight guard every request holds
//! (`inflight`) and the upgraded connections among them (`upgraded`), the verify window counting on that guard (`watch`,
//! `window`), and the re-admission of ejected endpoints (`probe`).
//!
//! A pool is created by `set_routes` and kept as long as the slot's addresses
//! stay the same, so its counters survive a promote. An endpoint whose connect
//! fails leaves rotation until the service's [`Probe`] passes again.
//! Connections to endpoints live in their idle stacks (`upstream::idle`).

pub(crate) mod inflight;
mod probe;
pub(crate) mod upgraded;
pub(crate) mod watch;
pub(crate) mod window;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use bytes::Bytes;

use crate::EndpointStatus;
use crate::policy::PolicyCell;
use crate::slot::Slot;
use crate::upstream::UpstreamCtx;
use crate::upstream::h2::H2Lanes;
use crate::upstream::idle::IdleStack;
use crate::upstream::raw::RawConn;
use crate::upstream::sender::Sender;
use inflight::InFlightCounter;
pub use probe::{Probe, ProbeFuture};
use watch::PoolWatch;

/// One instance address and what the proxy knows about it.
pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    /// Requests on this endpoint now; least-in-flight picking reads it.
    in_flight: AtomicUsize,
    /// Out of rotation after a failed connect; cleared by the probe task.
    pub(crate) ejected: AtomicBool,
    /// Idle upstream connections of the hyper path, ready for reuse.
    pub(crate) idle: IdleStack<Sender>,
    /// Idle upstream connections of the lean HTTP/1.1 path.
    pub(crate) raw_idle: IdleStack<RawConn>,
    /// The HTTP/2 connections of an h2c pool, one per worker, shared by
    /// that worker's requests.
    pub(crate) h2: H2Lanes,
}

impl Endpoint {
    fn new(addr: SocketAddr, lanes: usize) -> Endpoint {
        Endpoint {
            addr,
            in_flight: AtomicUsize::new(0),
            ejected: AtomicBool::new(false),
            idle: IdleStack::new(lanes),
            raw_idle: IdleStack::new(lanes),
            h2: H2Lanes::new(lanes),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn enter(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    fn load(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn is_ejected(&self) -> bool {
        self.ejected.load(Ordering::Relaxed)
    }

    /// Closes every idle connection to this endpoint.
    fn clear_idle(&self) {
        self.idle.clear();
        self.raw_idle.clear();
        self.h2.clear();
    }
}

/// Per-slot traffic numbers the proxy observed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficStats {
    pub requests: u64,
    pub responses_5xx: u64,
    /// Requests that got no upstream response at all (connect/transport failures).
    pub upstream_failures: u64,
    /// Requests the client broke (a malformed or cut-short body): answered 400
    /// or closed, never counted as 5xx or as an upstream failure.
    pub client_errors: u64,
    pub in_flight: usize,
}

/// Counters of one pool, since it was created.
#[derive(Default)]
pub(crate) struct PoolStats {
    requests: AtomicU64,
    responses_5xx: AtomicU64,
    upstream_failures: AtomicU64,
    client_errors: AtomicU64,
}

impl PoolStats {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn server_error(&self) {
        self.responses_5xx.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn upstream_failure(&self) {
        self.upstream_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn client_error(&self) {
        self.client_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the access log says of a pool's requests: its service, slot and
/// version (a new version on the same addresses gets a new pool).
#[derive(Debug)]
pub(crate) struct PoolLabel {
    pub(crate) service: Box<str>,
    pub(crate) slot: Slot,
    pub(crate) version: Box<str>,
}

/// The endpoints of one (service, slot), as installed by one `set_routes`.
pub(crate) struct Pool {
    slot: Slot,
    /// Read by the access log only.
    pub(crate) label: PoolLabel,
    pub(crate) endpoints: Box<[Endpoint]>,
    /// Where the next pick starts scanning, so ties between equally loaded
    /// endpoints rotate (round-robin tie-break).
    cursor: AtomicUsize,
    /// Shared with every pool this slot has had: `drain` waits on it.
    in_flight: Arc<InFlightCounter>,
    stats: PoolStats,
    /// True while production or preview routes point here. Probing stops and
    /// idle connections are not kept once a pool is routed away.
    routed: AtomicBool,
    /// True while a probe task runs for this pool; at most one at a time.
    pub(crate) probing: AtomicBool,
    /// How ejected endpoints are probed (the service's health check).
    probe: Mutex<Arc<dyn Probe>>,
    pub(crate) ctx: Arc<UpstreamCtx>,
    /// True while a verify window watches this pool: the request path reads it
    /// (one relaxed load) and only then loads `watch`.
    watched: AtomicBool,
    /// The armed verify window, if any (set and cleared by `set_watch`).
    watch: ArcSwapOption<PoolWatch>,
    /// The service's body limit and error pages (shared with its routes):
    /// a 502 or 504 of this pool's finds the page here.
    pub(crate) policy: PolicyCell,
    /// The service speaks HTTP/2 with prior knowledge (`protocol = "h2c"`):
    /// its requests all take hyper's path, on `Endpoint::h2` connections.
    pub(crate) h2c: bool,
}

/// What a pool takes from its service as a whole, beside its label: the
/// body limit and error pages (one cell, shared with the routes) and
/// whether the instances speak HTTP/2 (`protocol = "h2c"`).
pub(crate) struct ServiceTerms {
    pub(crate) policy: PolicyCell,
    pub(crate) h2c: bool,
}

impl Pool {
    pub(crate) fn new(
        label: PoolLabel,
        addrs: &[SocketAddr],
        probe: Arc<dyn Probe>,
        in_flight: Arc<InFlightCounter>,
        ctx: Arc<UpstreamCtx>,
        watch: Option<Arc<PoolWatch>>,
        terms: ServiceTerms,
    ) -> Arc<Pool> {
        let ServiceTerms { policy, h2c } = terms;
        Arc::new(Pool {
            policy,
            h2c,
            watched: AtomicBool::new(watch.is_some()),
            watch: ArcSwapOption::new(watch),
            slot: label.slot,
            label,
            endpoints: addrs
                .iter()
                .map(|&addr| Endpoint::new(addr, ctx.lanes))
                .collect(),
            cursor: AtomicUsize::new(0),
            in_flight,
            stats: PoolStats::default(),
            routed: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            probe: Mutex::new(probe),
            ctx,
        })
    }

    /// The service's page for the proxy's own answer with `status`.
    pub(crate) fn error_page(&self, status: u16) -> Option<Bytes> {
        self.policy.load().error_pages.get(status).cloned()
    }

    pub(crate) fn slot(&self) -> Slot {
        self.slot
    }

    pub(crate) fn has_addrs(&self, addrs: &[SocketAddr]) -> bool {
        self.endpoints.len() == addrs.len()
            && self.endpoints.iter().zip(addrs).all(|(e, a)| e.addr == *a)
    }

    pub(crate) fn len(&self) -> usize {
        self.endpoints.len()
    }

    pub(crate) fn endpoint(&self, index: usize) -> &Endpoint {
        &self.endpoints[index]
    }

    pub(crate) fn in_flight(&self) -> &InFlightCounter {
        &self.in_flight
    }

    pub(crate) fn stats(&self) -> &PoolStats {
        &self.stats
    }

    pub(crate) fn traffic(&self) -> TrafficStats {
        TrafficStats {
            requests: self.stats.requests.load(Ordering::Relaxed),
            responses_5xx: self.stats.responses_5xx.load(Ordering::Relaxed),
            upstream_failures: self.stats.upstream_failures.load(Ordering::Relaxed),
            client_errors: self.stats.client_errors.load(Ordering::Relaxed),
            in_flight: self.in_flight.get(),
        }
    }

    pub(crate) fn endpoint_status(&self) -> Vec<EndpointStatus> {
        self.endpoints
            .iter()
            .map(|e| EndpointStatus {
                addr: e.addr,
                ejected: e.is_ejected(),
                in_flight: e.load(),
            })
            .collect()
    }

    /// The verify window watching this pool, if one is armed.
    pub(crate) fn watch(&self) -> Option<Arc<PoolWatch>> {
        if self.watched.load(Ordering::Relaxed) {
            self.watch.load_full()
        } else {
            None
        }
    }

    pub(crate) fn set_watch(&self, watch: Option<Arc<PoolWatch>>) {
        self.watched.store(watch.is_some(), Ordering::Relaxed);
        self.watch.store(watch);
    }

    pub(crate) fn is_routed(&self) -> bool {
        self.routed.load(Ordering::Acquire)
    }

    pub(crate) fn set_probe(&self, probe: &Arc<dyn Probe>) {
        if let Ok(mut current) = self.probe.lock() {
            *current = Arc::clone(probe);
        }
    }

    /// Marks the pool as routed or not. Routing it again resumes probing of
    /// endpoints still ejected; routing it away drops its idle connections.
    pub(crate) fn set_routed(self: &Arc<Self>, routed: bool) {
        self.routed.store(routed, Ordering::Release);
        if routed {
            if self.endpoints.iter().any(Endpoint::is_ejected) {
                self.start_probing();
            }
        } else {
            self.drop_idle();
        }
    }

    /// Closes every idle upstream connection of this pool.
    pub(crate) fn drop_idle(&self) {
        for endpoint in self.endpoints.iter() {
            endpoint.clear_idle();
        }
    }

    /// Picks the endpoint with the fewest requests in flight, skipping ejected
    /// ones (unless all are) and `exclude`. Ties go to the first in rotation.
    pub(crate) fn pick(&self, exclude: Option<usize>) -> usize {
        let n = self.endpoints.len();
        if n <= 1 {
            return 0;
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed) % n;
        for skip_ejected in [true, false] {
            let mut best: Option<(usize, usize)> = None;
            for k in 0..n {
                let index = (start + k) % n;
                let endpoint = &self.endpoints[index];
                if Some(index) == exclude || (skip_ejected && endpoint.is_ejected()) {
                    continue;
                }
                let load = endpoint.load();
                if best.is_none_or(|(_, best_load)| load < best_load) {
                    best = Some((index, load));
                }
            }
            if let Some((index, _)) = best {
                return index;
            }
        }
        start
    }

    /// Takes endpoint `index` out of rotation after a failed connect, and makes
    /// sure a probe task will put it back once it answers its health check.
    pub(crate) fn eject(self: &Arc<Self>, index: usize) {
        let endpoint = &self.endpoints[index];
        if !endpoint.ejected.swap(true, Ordering::AcqRel) {
            tracing::warn!(addr = %endpoint.addr, slot = %self.slot, "upstream connect failed: endpoint ejected");
            endpoint.clear_idle();
        }
        if self.is_routed() {
            self.start_probing();
        }
    }

    fn start_probing(self: &Arc<Self>) {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        let shutdown = self.ctx.shutdown.clone();
        self.ctx.tasks.spawn(async move {
            tokio::select! {
                _ = probe::probe_ejected(weak) => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
}

impl Pool {
    /// Puts the connection of a finished response back on endpoint `index`'s
    /// idle stack, once hyper says it can take another request. Connections of
    /// pools routed away, or after shutdown, are closed instead.
    pub(crate) fn check_in(self: &Arc<Self>, index: usize, sender: Sender) {
        // An HTTP/2 connection is not checked out: it stays in its lane.
        let Some(mut sender) = sender.into_http1() else {
            return;
        };
        if !self.keeps_idle() || sender.is_closed() {
            return;
        }
        let (idle_timeout, max) = (self.ctx.idle_timeout, self.ctx.max_idle);
        if sender.is_ready() {
            self.endpoints[index]
                .idle
                .put(Sender::Http1(sender), idle_timeout, max);
            return;
        }
        // The connection task has not finished the previous exchange yet.
        let pool = Arc::clone(self);
        self.ctx.tasks.spawn(async move {
            if let Ok(Ok(())) = tokio::time::timeout(idle_timeout, sender.ready()).await
                && pool.is_routed()
            {
                pool.endpoints[index]
                    .idle
                    .put(Sender::Http1(sender), idle_timeout, max);
            }
        });
    }

    /// Puts a lean-path connection whose response ended cleanly back on
    /// endpoint `index`'s idle stack; closes it instead for pools routed away,
    /// or after shutdown.
    pub(crate) fn check_in_raw(&self, index: usize, conn: RawConn) {
        if !self.keeps_idle() {
            return;
        }
        let (idle_timeout, max) = (self.ctx.idle_timeout, self.ctx.max_idle);
        self.endpoints[index].raw_idle.put(conn, idle_timeout, max);
    }

    /// Idle connections are kept only while the pool is routed to and the
    /// proxy is not shutting down.
    fn keeps_idle(&self) -> bool {
        self.is_routed() && !self.ctx.closing.load(Ordering::Relaxed)
    }
}
