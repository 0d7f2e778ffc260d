//! Listeners: binding, and the accept loops that hand each client connection
//! to `conn::serve` on the worker that accepted it; and `Proxy::handle`, which
//! routes one request to its pool.
//!
//! A connection belongs to an [`Entry`]: the production listener routes by
//! Host, a preview listener serves one service's preview pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;

use crate::router::RouterError;

use super::Proxy;
use super::body::ProxyBody;
use super::conn::{self, UpgradeSlot};
use super::error::ProxyError;
use super::forward;
use super::headers::ClientAddr;
use super::pool::Pool;
use super::routes::{ServiceRoutes, request_host};

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

/// Starts accepting on `listener` until shutdown: one accept loop on each
/// worker thread, each registered with that worker's own event loop, so a
/// connection is served start to end by the worker that accepted it (the
/// first idle one to wake), as nginx worker processes share a listen socket.
pub(crate) fn spawn_accept(
    proxy: &Arc<Proxy>,
    listener: TcpListener,
    addr: SocketAddr,
    entry: Entry,
) -> Result<(), RouterError> {
    let fail = |source| RouterError::Bind { addr, source };
    let listener = listener.into_std().map_err(fail)?;
    for worker in proxy.workers.handles() {
        let own = listener.try_clone().map_err(fail)?;
        let accept = accept_loop(Arc::clone(proxy), own, entry.clone());
        worker.spawn(proxy.connections.track_future(accept));
    }
    Ok(())
}

async fn accept_loop(proxy: Arc<Proxy>, listener: std::net::TcpListener, entry: Entry) {
    // Registered with the event loop of the worker this runs on.
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "cannot register a listener with a proxy worker");
            return;
        }
    };
    // This worker's own view of the shutdown: its connections wait on it
    // without sharing a lock with the other workers'.
    let shutdown = proxy.shutdown.child_token();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off a little.
                tracing::warn!(%error, "accept failed");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        let task = conn::serve(
            Arc::clone(&proxy),
            stream,
            peer.ip(),
            entry.clone(),
            shutdown.clone(),
        );
        proxy.connections.spawn(task);
    }
}

impl Proxy {
    /// Routes one request and forwards it, or answers 404/503 itself.
    pub(crate) async fn handle(
        &self,
        req: Request<Incoming>,
        client: &ClientAddr,
        entry: &Entry,
        upgrade: &UpgradeSlot,
    ) -> Response<ProxyBody> {
        match self.pool_for(entry, || request_host(&req)) {
            Ok(pool) => forward::forward(pool, req, client, upgrade).await,
            Err(error) => forward::local(&error),
        }
    }

    /// The pool a request for `host` that came in on `entry` goes to, or why
    /// there is none. `host` is only called when some service names hosts.
    pub(crate) fn pool_for<'a>(
        &self,
        entry: &Entry,
        host: impl FnOnce() -> Option<&'a str>,
    ) -> Result<Arc<Pool>, ProxyError> {
        let pool = match entry {
            Entry::Production => {
                let table = self.table.load();
                match table.route_host(host) {
                    Some(service) => service.production.load_full(),
                    // Nothing installed yet (daemon starting): unavailable, not unknown.
                    None if table.is_empty() => None,
                    None => return Err(ProxyError::NoRoute),
                }
            }
            Entry::Preview(service) => service.preview.load_full(),
        };
        pool.ok_or(ProxyError::NoBackend)
    }
}
