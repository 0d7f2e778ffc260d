//! teal's builtin reverse proxy: listeners, Host routing, forwarding, upstream
//! connection reuse, the atomic pool switch, in-flight tracking and verify
//! windows.
//!
//! [`Proxy`] knows nothing of deploys, runtimes, config or state: its owner
//! (the daemon's builtin router) tells it, per service, which instance
//! addresses production and the preview listener go to ([`Service`],
//! [`Backend`]), how to check an ejected instance ([`Probe`]), and when to
//! arm a verify window ([`Proxy::watch_slot`]). It does not start instances
//! and does not decide when to switch. Map of the folders:
//!
//! - `listener`: binding, accept loops, and one connection's life: the lean
//!   path first, hyper's when it hands over.
//! - `client/`: what both HTTP paths share about a client connection: the
//!   socket with bytes put back (`io`), the client address text (`addr`),
//!   the hand-over, counters and parking's timing.
//! - `lean/`: the lean HTTP/1.1 path every connection starts on: heads copied
//!   through, the upstream exchange inside the client connection's task.
//! - `hyper/`: hyper's path, for what the lean one hands over (h2c, upgrades,
//!   HTTP/1.0, chunked or large request bodies): connection serving with
//!   parking, forwarding, bodies, header rewriting, websocket tunnels.
//! - `retry`: the one retry loop both paths run, with its rules.
//! - `upstream/`: connections to the apps: connect settings, idle stacks, and
//!   each path's kind of connection (`raw`, `sender`).
//! - `pool/`: one slot's endpoints as one unit: least-in-flight picking,
//!   passive ejection and re-admission, the in-flight guard `drain` waits on,
//!   and the verify window that counts on that guard.
//! - `routes/`: the route table (Host → service, the per-service pool
//!   pointers that are the atomic switch), what the owner gives
//!   (`Service`, `Backend`), drain and counters. Installing routes is
//!   [`Proxy::install`], here: it binds preview listeners too.
//! - `tls/`: the TLS listener's handshake, certificates chosen by SNI from
//!   the route table, and the user's certificate files. Swapping a
//!   service's certificate alone ([`Proxy::set_certificate`]) and ACME
//!   HTTP-01 answers ([`Proxy::set_challenge`]) are in `routes/`.
//! - `access/`: the access log (a JSON line per request, per-worker buffers,
//!   a writer thread), request ids, and the rate-limited 502/504 warnings.
//! - `accept`: what every accept loop does when `accept` fails (also used by
//!   the daemon's admin listener and control socket).
//! - `workers`: the worker threads, one single-threaded runtime each.
//! - `policy`: a service's body limit and error pages.
//! - `hold`: what a request meets in maintenance or a pause (`routes/gate.rs`
//!   sets them).
//! - `options`, `error`, `slot`: what their names say.

mod accept;
mod access;
mod client;
mod error;
mod handover;
mod hold;
mod hyper;
mod lean;
mod listener;
mod options;
mod policy;
mod pool;
mod retry;
mod routes;
mod slot;
mod stall;
mod tls;
mod upstream;
mod workers;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use accept::{ACCEPT_PAUSE, AcceptPause};
pub use access::{AccessLog, AccessLogError, AccessTarget};
pub use client::ClientConnections;
pub use error::RouteError;
pub use hold::MAX_HELD;
/// The lean path's parsers for the fuzz targets (`fuzz/`); not an API.
#[doc(hidden)]
pub use lean::fuzzing;
pub use listener::{HandedConn, Listening};
pub use options::{
    DEFAULT_BODY_BUFFER, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_CONCURRENT_STREAMS,
    DEFAULT_RESPONSE_TIMEOUT, DEFAULT_SEND_TIMEOUT, ProxyOptions, UnderscoreHeaders,
};
pub use policy::{ErrorPageError, ErrorPages, MAX_ERROR_PAGE, RequestPolicy};
pub use pool::window::{ErrorBudget, Watch, WindowCounters, WindowStats};
pub use pool::{Probe, ProbeFuture, TrafficStats};
pub use routes::{
    Backend, DrainReport, GateSpec, ListenerName, MaintenanceSpec, PauseSpec, Service,
    UpstreamProtocol,
};
pub use slot::Slot;
pub use teal_histogram::Histogram;
pub use tls::{CertError, ServiceCert};

use pool::Pool;
use routes::{ListenerKind, RouteTable, ServiceRoutes, normalize_hosts};
use upstream::UpstreamCtx;
use workers::Workers;

/// One instance address as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    pub addr: SocketAddr,
    /// Out of rotation after a failed connect, until its health check passes.
    pub ejected: bool,
    pub in_flight: usize,
}

/// The builtin proxy.
pub struct Proxy {
    /// The production listener's real address.
    listen: SocketAddr,
    /// The TLS listener's real address, and its handshake settings.
    tls: Option<(SocketAddr, tokio_rustls::TlsAcceptor)>,
    opts: ProxyOptions,
    /// Host → service. Replaced whole by `set_routes`; requests read it lock-free.
    table: ArcSwap<RouteTable>,
    /// Serialises `set_routes` calls so two changes never interleave. Requests
    /// never take it.
    writer: tokio::sync::Mutex<()>,
    /// Connection settings shared by every listener (limits, timers).
    protocols: hyper::Protocols,
    /// Open client connections, and how many of them are parked.
    conns: client::ConnCounts,
    upstream: Arc<UpstreamCtx>,
    /// Accept loops and client connections: `wait_closed` waits on them.
    connections: TaskTracker,
    /// The threads that run accept loops, connections and upstream connections.
    workers: Workers,
    /// Fired by the owner: stop accepting, finish connections gracefully.
    shutdown: CancellationToken,
    /// A child of `shutdown`, also fired by a hand-over: accept loops and
    /// connections wait on it (each worker on its own child).
    stop: CancellationToken,
    /// True once a hand-over began: a fired `stop` then means "move to the
    /// successor at the next request boundary", not "close".
    handing_over: AtomicBool,
    /// Where connections go during a hand-over.
    successor: Mutex<Option<tokio::sync::mpsc::UnboundedSender<HandedConn>>>,
    /// Duplicates of the sockets every listener accepts on, for a successor.
    listening: Mutex<Vec<Listening>>,
    /// A predecessor's sockets not taken yet (previews, taken at install).
    inherited: Mutex<Vec<Listening>>,
    /// Spreads handed-over connections over the workers.
    handed_next: AtomicUsize,
    /// Fired when accept loops may accept: at once, or for a proxy on a
    /// predecessor's sockets only when its owner is ready to serve
    /// (`start_accepting`), so a successor that fails before never took a
    /// connection from the predecessor's queues.
    accepting: CancellationToken,
    /// ACME HTTP-01 tokens being validated and their answers.
    challenges: routes::Challenges,
    /// Maintenance and pause by service name (`routes::gate`).
    gates: routes::Gates,
    /// Ourselves, to start preview accept loops from `&self`.
    me: Weak<Proxy>,
}

impl Proxy {
    /// Binds the production listener and starts serving (503 for everything until
    /// routes are set). Stops accepting when `shutdown` fires.
    pub async fn bind(
        listen: SocketAddr,
        shutdown: CancellationToken,
    ) -> Result<Arc<Proxy>, RouteError> {
        Proxy::bind_with(listen, ProxyOptions::default(), shutdown).await
    }

    /// [`Proxy::bind`] with explicit options.
    pub async fn bind_with(
        listen: SocketAddr,
        opts: ProxyOptions,
        shutdown: CancellationToken,
    ) -> Result<Arc<Proxy>, RouteError> {
        Proxy::start(listen, opts, shutdown, Vec::new()).await
    }

    /// Binds (or takes over from `inherited`) the production listener and
    /// starts serving.
    async fn start(
        listen: SocketAddr,
        opts: ProxyOptions,
        shutdown: CancellationToken,
        mut inherited: Vec<Listening>,
    ) -> Result<Arc<Proxy>, RouteError> {
        let accepting = CancellationToken::new();
        if inherited.is_empty() {
            accepting.cancel();
        }
        let workers = Workers::start(opts.workers).map_err(|cause| RouteError::Bind {
            addr: listen,
            cause,
        })?;
        let bound = match take_inherited(&mut inherited, &ListenerName::Production, listen) {
            Some(sockets) => listener::Bound::inherited(sockets)?,
            None => listener::bind(listen, workers.len()).await?,
        };
        let addr = bound.addr;
        let tls_bound = match opts.tls_listen {
            Some(tls_listen) => Some(
                match take_inherited(&mut inherited, &ListenerName::Tls, tls_listen) {
                    Some(sockets) => listener::Bound::inherited(sockets)?,
                    None => listener::bind(tls_listen, workers.len()).await?,
                },
            ),
            None => None,
        };
        let resolver = tls::BySni::new();
        let acceptor = match &tls_bound {
            Some(bound) => Some((
                bound.addr,
                tls::acceptor(Arc::clone(&resolver))
                    .map_err(|error| RouteError::Tls(error.to_string()))?,
            )),
            None => None,
        };
        let upstream = Arc::new(UpstreamCtx {
            lanes: workers.len() + 1,
            connect_timeout: opts.connect_timeout,
            response_timeout: opts.response_timeout,
            body_timeout: opts.body_timeout,
            send_timeout: opts.send_timeout,
            idle_timeout: opts.upstream_idle_timeout,
            max_idle: opts.max_idle_per_endpoint,
            tasks: TaskTracker::new(),
            shutdown: shutdown.clone(),
            closing: AtomicBool::new(false),
        });
        let proxy = Arc::new_cyclic(|me| Proxy {
            listen: addr,
            tls: acceptor,
            protocols: hyper::Protocols::new(&opts),
            conns: client::ConnCounts::default(),
            opts,
            table: ArcSwap::from_pointee(RouteTable::default()),
            writer: tokio::sync::Mutex::new(()),
            upstream,
            connections: TaskTracker::new(),
            workers,
            stop: shutdown.child_token(),
            shutdown,
            handing_over: AtomicBool::new(false),
            successor: Mutex::new(None),
            listening: Mutex::new(Vec::new()),
            inherited: Mutex::new(inherited),
            handed_next: AtomicUsize::new(0),
            accepting,
            challenges: routes::Challenges::default(),
            gates: routes::Gates::default(),
            me: me.clone(),
        });
        if let Some(log) = &proxy.opts.access_log {
            for worker in proxy.workers.handles() {
                worker.spawn(Arc::clone(log).tick());
            }
        }
        listener::spawn_accept(&proxy, bound, ListenerKind::Production);
        resolver.serve(&proxy);
        if let Some(bound) = tls_bound {
            tracing::info!(addr = %bound.addr, "TLS listening");
            listener::spawn_accept(&proxy, bound, ListenerKind::Tls);
        }
        let upstream = Arc::clone(&proxy.upstream);
        proxy.connections.spawn(async move {
            upstream.shutdown.cancelled().await;
            upstream.closing.store(true, Ordering::Relaxed);
        });
        // Once the proxy stops (shutdown or hand-over), the copies kept for a
        // successor go: the sockets close with the accept loops (and a
        // successor already has its own copies).
        let me = Arc::downgrade(&proxy);
        let stop = proxy.stop.clone();
        proxy.connections.spawn(async move {
            stop.cancelled().await;
            if let Some(proxy) = me.upgrade() {
                proxy
                    .listening
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear();
                proxy
                    .inherited
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear();
            }
        });
        tracing::info!(%addr, "proxy listening");
        Ok(proxy)
    }

    /// Installs `spec`'s routes in one atomic step: production to `live`, the
    /// preview listener (bound now if the service has one) to `preview`. None
    /// means nothing there: such requests get 503. On an error (a host
    /// conflict, a preview listener that cannot bind) every route stays as it was.
    pub async fn install(
        &self,
        spec: &Service,
        live: Option<Backend>,
        preview: Option<Backend>,
    ) -> Result<(), RouteError> {
        if spec.tls.is_some() && self.tls.is_none() {
            return Err(RouteError::Tls(format!(
                "service {:?} has a certificate but the proxy has no TLS listener",
                spec.name
            )));
        }
        let _writer = self.writer.lock().await;
        let current = self.table.load_full();
        let service = match current.service(&spec.name) {
            Some(service) => Arc::clone(service),
            None => Arc::new(ServiceRoutes::new(&spec.name, self.gates.of(&spec.name))),
        };
        let table = current.with_service(Arc::clone(&service), normalize_hosts(&spec.hosts))?;
        if let Some(addr) = spec.preview
            && service.preview_addr.get().is_none()
        {
            let me = self.me.upgrade().ok_or(RouteError::Closed)?;
            let taken = take_inherited(
                &mut self.inherited.lock().unwrap_or_else(|e| e.into_inner()),
                &ListenerName::Preview(spec.name.clone()),
                addr,
            );
            let bound = match taken {
                Some(sockets) => listener::Bound::inherited(sockets)?,
                None => listener::bind(addr, me.workers.len()).await?,
            };
            let local = bound.addr;
            listener::spawn_accept(&me, bound, ListenerKind::Preview(Arc::clone(&service)));
            let _ = service.preview_addr.set(local);
            tracing::info!(service = %spec.name, addr = %local, "preview listening");
        }

        let pool = |backend: Option<Backend>| {
            backend
                .filter(|b| !b.addrs.is_empty())
                .map(|b| service.pool_for(&b, &spec.probe, &self.upstream, spec.protocol))
        };
        let live = pool(live);
        let preview = pool(preview);
        for new in live.iter().chain(preview.iter()) {
            new.set_routed(true);
        }
        // The certificate and the redirect go with the routes: the table
        // stored below makes a new service's visible at once.
        self.store_cert(&service, spec.tls.as_ref());
        service.policy.store(Arc::new(spec.policy.clone()));
        let old_live = service.production.swap(live.clone());
        let old_preview = service.preview.swap(preview.clone());
        for old in old_live.iter().chain(old_preview.iter()) {
            let still = |p: &Option<Arc<Pool>>| p.as_ref().is_some_and(|p| Arc::ptr_eq(p, old));
            if !still(&live) && !still(&preview) {
                old.set_routed(false);
            }
        }
        self.table.store(Arc::new(table));
        tracing::info!(
            service = %spec.name,
            live = ?live.as_ref().map(|p| p.slot()),
            preview = ?preview.as_ref().map(|p| p.slot()),
            "routes installed"
        );
        Ok(())
    }

    /// Waits until every connection the proxy served has closed (after `shutdown`
    /// fired), or `grace` has passed; then returns. Connections still open at
    /// the deadline (websockets, slow bodies) are cut.
    pub async fn wait_closed(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        self.connections.close();
        let closed = tokio::time::timeout_at(deadline, self.connections.wait())
            .await
            .is_ok();
        // No client is left to reuse idle upstream connections: close them so
        // their tasks end.
        for service in self.table.load().services() {
            for slot in Slot::ALL {
                if let Some(pool) = service.slot_pool(slot) {
                    pool.drop_idle();
                }
            }
        }
        self.upstream.tasks.close();
        if closed {
            let _ = tokio::time::timeout_at(deadline, self.upstream.tasks.wait()).await;
        }
        // Whatever is still open (a websocket, a slow body) ends with the
        // worker runtimes.
        if self.shutdown.is_cancelled() {
            self.workers.stop().await;
        }
    }

    /// Open client connections, how many of those are parked (idle HTTP/1.1
    /// connections holding no buffers), and how many requests were refused
    /// for a malformed head so far.
    pub fn client_connections(&self) -> ClientConnections {
        ClientConnections {
            open: self.conns.open.load(Ordering::Relaxed),
            parked: self.conns.parked.load(Ordering::Relaxed),
            malformed_requests: self.conns.malformed_requests.load(Ordering::Relaxed),
            access_log_dropped_lines: self.opts.access_log.as_ref().map(|log| log.dropped_lines()),
        }
    }

    /// How many HTTP/1.1 client connections so far met a request the lean
    /// path (`h1`) does not handle, and were served by hyper from then on.
    pub fn connections_handed_to_hyper(&self) -> u64 {
        self.conns.handed_to_hyper.load(Ordering::Relaxed)
    }

    /// The production listener's address, then every preview listener's.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        let mut addrs = vec![self.listen];
        let table = self.table.load();
        addrs.extend(
            table
                .services()
                .filter_map(|service| service.preview_addr.get().copied()),
        );
        addrs
    }

    /// What the proxy knows about each instance address of `slot`'s current pool.
    pub fn endpoints(&self, service: &str, slot: Slot) -> Vec<EndpointStatus> {
        let pool = self
            .table
            .load()
            .service(service)
            .and_then(|service| service.slot_pool(slot));
        pool.map(|pool| pool.endpoint_status()).unwrap_or_default()
    }

    /// The access log its options gave it, if any.
    pub fn access_log(&self) -> Option<&Arc<AccessLog>> {
        self.opts.access_log.as_ref()
    }

    /// The TLS listener's address, when the proxy has one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|(addr, _)| *addr)
    }

    /// The address of `service`'s preview listener, once bound.
    pub fn preview_listen_addr(&self, service: &str) -> Option<SocketAddr> {
        self.table
            .load()
            .service(service)
            .and_then(|service| service.preview_addr.get().copied())
    }
}

/// Takes `name`'s sockets out of `inherited` when they listen on `addr` (any
/// address of theirs when `addr` asks for port 0).
fn take_inherited(
    inherited: &mut Vec<Listening>,
    name: &ListenerName,
    addr: SocketAddr,
) -> Option<Listening> {
    let at = inherited
        .iter()
        .position(|l| l.name == *name && (addr.port() == 0 || l.addr == addr))?;
    Some(inherited.swap_remove(at))
}
