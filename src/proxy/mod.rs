//! The builtin reverse proxy: listeners, Host routing, forwarding, upstream
//! connection reuse, the atomic pool switch and in-flight tracking.
//!
//! [`Proxy`] is driven through [`crate::router::Router`] (see
//! `router/builtin.rs`). It does not start instances and does not decide when
//! to switch: `deploy/` does. Map of the files:
//!
//! - `listener`: binding, accept loops, routing a request to its pool.
//! - `conn`: one client connection: h2c, or HTTP/1.1 on the lean path (`h1`)
//!   with hyper taking over what that path does not handle; parking; upgrades.
//! - `h1`: the lean HTTP/1.1 path: heads copied through, the upstream exchange
//!   inside the client connection's task.
//! - `routes`: the route table (Host → service) and per-service pool pointers.
//! - `install`: `set_routes`, `drain` and `stats` on that table.
//! - `pool`: endpoints, least-in-flight picking, passive ejection.
//! - `forward`: one request upstream through hyper, upgrades.
//! - `retry`: the retry rules both paths share.
//! - `upstream`: upstream connections and their idle stacks.
//! - `watch`: verify windows: counting a watched slot, switching back on a crossing.
//! - `workers`: the worker threads, one single-threaded runtime each.
//! - `headers`, `body`, `inflight`, `error`: what their names say.

mod body;
mod conn;
mod error;
mod forward;
mod h1;
mod headers;
mod inflight;
mod install;
mod listener;
mod pool;
mod retry;
mod routes;
mod upstream;
mod watch;
mod workers;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::router::{ClientConnections, RouterError};
use crate::slot::Slot;
use listener::Entry;
use routes::RouteTable;
use upstream::UpstreamCtx;
use workers::Workers;

/// Tunables of the proxy. [`Proxy::bind`] uses the defaults.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// A client must send a complete request head within this time, or its
    /// connection is closed (slowloris protection). Also bounds keep-alive idle.
    pub header_read_timeout: Duration,
    /// Largest request head accepted (HTTP/1.1 read buffer, h2 header list);
    /// beyond it HTTP/1.1 clients get 431. At least 8 KiB.
    pub max_header_bytes: usize,
    /// Longest wait for an upstream TCP connect (then 504, or another endpoint).
    pub connect_timeout: Duration,
    /// Longest wait for an instance's response head once the request is sent
    /// (then 504; the request is not sent again).
    pub response_timeout: Duration,
    /// Idle upstream connections older than this are not reused. Keep it below
    /// the apps' own keep-alive timeout (often 5 s).
    pub upstream_idle_timeout: Duration,
    /// Idle upstream connections kept per endpoint (and per worker).
    pub max_idle_per_endpoint: usize,
    /// Worker threads serving connections, each with its own event loop.
    pub workers: usize,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            connect_timeout: Duration::from_secs(2),
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            upstream_idle_timeout: Duration::from_secs(2),
            max_idle_per_endpoint: 256,
            workers: default_workers(),
        }
    }
}

/// `ProxyOptions::response_timeout` unless configured: what the nginx router
/// uses too (`proxy_read_timeout`).
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);

/// One worker per core.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One instance address as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    pub addr: SocketAddr,
    /// Out of rotation after a failed connect, until its health check passes.
    pub ejected: bool,
    pub in_flight: usize,
}

/// The builtin proxy. Implements [`crate::router::Router`].
pub struct Proxy {
    /// The production listener's real address.
    listen: SocketAddr,
    opts: ProxyOptions,
    /// Host → service. Replaced whole by `set_routes`; requests read it lock-free.
    table: ArcSwap<RouteTable>,
    /// Serialises `set_routes` calls so two changes never interleave. Requests
    /// never take it.
    writer: tokio::sync::Mutex<()>,
    /// Connection settings shared by every listener (limits, timers).
    protocols: conn::Protocols,
    /// Open client connections, and how many of them are parked.
    conns: conn::ConnCounts,
    upstream: Arc<UpstreamCtx>,
    /// Accept loops and client connections: `wait_closed` waits on them.
    connections: TaskTracker,
    /// The threads that run accept loops, connections and upstream connections.
    workers: Workers,
    /// Fired by the owner: stop accepting, finish connections gracefully.
    shutdown: CancellationToken,
    /// Ourselves, to start preview accept loops from `&self`.
    me: Weak<Proxy>,
}

impl Proxy {
    /// Binds the production listener and starts serving (503 for everything until
    /// routes are set). Stops accepting when `shutdown` fires.
    pub async fn bind(
        listen: SocketAddr,
        shutdown: CancellationToken,
    ) -> Result<Arc<Proxy>, RouterError> {
        Proxy::bind_with(listen, ProxyOptions::default(), shutdown).await
    }

    /// [`Proxy::bind`] with explicit options.
    pub async fn bind_with(
        listen: SocketAddr,
        opts: ProxyOptions,
        shutdown: CancellationToken,
    ) -> Result<Arc<Proxy>, RouterError> {
        let workers = Workers::start(opts.workers).map_err(|source| RouterError::Bind {
            addr: listen,
            source,
        })?;
        let bound = listener::bind(listen, workers.len()).await?;
        let addr = bound.addr;
        let upstream = Arc::new(UpstreamCtx {
            lanes: workers.len() + 1,
            connect_timeout: opts.connect_timeout,
            response_timeout: opts.response_timeout,
            idle_timeout: opts.upstream_idle_timeout,
            max_idle: opts.max_idle_per_endpoint,
            tasks: TaskTracker::new(),
            shutdown: shutdown.clone(),
            closing: AtomicBool::new(false),
        });
        let proxy = Arc::new_cyclic(|me| Proxy {
            listen: addr,
            protocols: conn::Protocols::new(&opts),
            conns: conn::ConnCounts::default(),
            opts,
            table: ArcSwap::from_pointee(RouteTable::default()),
            writer: tokio::sync::Mutex::new(()),
            upstream,
            connections: TaskTracker::new(),
            workers,
            shutdown,
            me: me.clone(),
        });
        listener::spawn_accept(&proxy, bound, Entry::Production);
        let upstream = Arc::clone(&proxy.upstream);
        proxy.connections.spawn(async move {
            upstream.shutdown.cancelled().await;
            upstream.closing.store(true, Ordering::Relaxed);
        });
        tracing::info!(%addr, "proxy listening");
        Ok(proxy)
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

    /// Open client connections, and how many of those are parked (idle
    /// HTTP/1.1 connections holding no buffers).
    pub fn client_connections(&self) -> ClientConnections {
        ClientConnections {
            open: self.conns.open.load(Ordering::Relaxed),
            parked: self.conns.parked.load(Ordering::Relaxed),
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

    /// The address of `service`'s preview listener, once bound.
    pub fn preview_listen_addr(&self, service: &str) -> Option<SocketAddr> {
        self.table
            .load()
            .service(service)
            .and_then(|service| service.preview_addr.get().copied())
    }
}
