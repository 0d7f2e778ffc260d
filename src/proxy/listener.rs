//! Listeners: binding, accept loops, and serving one client connection
//! (HTTP/1.1 with keep-alive and upgrades, or h2c with prior knowledge) with
//! its limits and graceful shutdown.
//!
//! A connection belongs to an [`Entry`]: the production listener routes by
//! Host, a preview listener serves one service's preview pool.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use tokio::net::{TcpListener, TcpStream};

use crate::router::RouterError;

use super::body::ProxyBody;
use super::error::ProxyError;
use super::forward;
use super::routes::{ServiceRoutes, request_host};
use super::{Proxy, ProxyOptions};

/// Smallest read buffer hyper accepts.
const MIN_HEADER_BYTES: usize = 8 * 1024;

/// What a listener serves.
#[derive(Clone)]
pub(crate) enum Entry {
    /// Routes by Host to each service's production pool.
    Production,
    /// Serves one service's preview pool, whatever the Host.
    Preview(Arc<ServiceRoutes>),
}

pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, RouterError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RouterError::Bind { addr, source })
}

/// Connection settings for every client connection.
pub(crate) fn http_builder(opts: &ProxyOptions) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .max_buf_size(opts.max_header_bytes.max(MIN_HEADER_BYTES))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(opts.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// Starts accepting on `listener` until shutdown: one accept loop per runtime
/// worker, so new connections are accepted (and their tasks spawned) on every
/// thread rather than funnelled through one, as nginx spreads them over workers.
pub(crate) fn spawn_accept(proxy: &Arc<Proxy>, listener: TcpListener, entry: Entry) {
    let listener = Arc::new(listener);
    let loops = tokio::runtime::Handle::current()
        .metrics()
        .num_workers()
        .max(1);
    for _ in 0..loops {
        proxy.connections.spawn(accept_loop(
            Arc::clone(proxy),
            Arc::clone(&listener),
            entry.clone(),
        ));
    }
}

async fn accept_loop(proxy: Arc<Proxy>, listener: Arc<TcpListener>, entry: Entry) {
    loop {
        let accepted = tokio::select! {
            _ = proxy.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off a little.
                tracing::warn!(%error, "accept failed");
                tokio::select! {
                    _ = proxy.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        let watcher = proxy
            .graceful
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|graceful| graceful.watcher());
        let Some(watcher) = watcher else { return };
        let task = serve(
            Arc::clone(&proxy),
            stream,
            peer.ip(),
            entry.clone(),
            watcher,
        );
        proxy.connections.spawn(task);
    }
}

/// Serves one client connection until it closes, shutdown finishes it, or it
/// sends no request head within the header timeout.
async fn serve(
    proxy: Arc<Proxy>,
    stream: TcpStream,
    client: IpAddr,
    entry: Entry,
    watcher: Watcher,
) {
    let _ = stream.set_nodelay(true);
    // Set by the first request. hyper bounds HTTP/1.1 head reads itself, but
    // not the protocol sniffing before it nor the h2 preface: this covers them.
    let started = Arc::new(AtomicBool::new(false));
    let service = {
        let proxy = Arc::clone(&proxy);
        let started = Arc::clone(&started);
        service_fn(move |req| {
            started.store(true, Ordering::Relaxed);
            let proxy = Arc::clone(&proxy);
            let entry = entry.clone();
            async move { Ok::<_, Infallible>(proxy.handle(req, client, &entry).await) }
        })
    };
    let conn = proxy
        .http
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .into_owned();
    let conn = watcher.watch(conn);
    tokio::pin!(conn);
    let hard_stop = proxy.upstream.hard_stop.clone();
    tokio::select! {
        _ = &mut conn => return,
        _ = hard_stop.cancelled() => return,
        _ = tokio::time::sleep(proxy.opts.header_read_timeout) => {}
    }
    if !started.load(Ordering::Relaxed) {
        tracing::debug!(%client, "no request within the header timeout: closing");
        return;
    }
    tokio::select! {
        _ = conn => {}
        _ = hard_stop.cancelled() => {}
    }
}

impl Proxy {
    /// Routes one request and forwards it, or answers 404/503 itself.
    async fn handle(
        &self,
        req: Request<Incoming>,
        client: IpAddr,
        entry: &Entry,
    ) -> Response<ProxyBody> {
        let pool = match entry {
            Entry::Production => {
                let table = self.table.load();
                match table.lookup(request_host(&req)) {
                    Some(service) => service.production.load_full(),
                    // Nothing installed yet (daemon starting): unavailable, not unknown.
                    None if table.is_empty() => None,
                    None => return forward::local(&ProxyError::NoRoute),
                }
            }
            Entry::Preview(service) => service.preview.load_full(),
        };
        match pool {
            Some(pool) => forward::forward(pool, req, client).await,
            None => forward::local(&ProxyError::NoBackend),
        }
    }
}
