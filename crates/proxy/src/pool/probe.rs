//! Re-admission: a background task per pool probes its ejected endpoints with
//! the service's [`Probe`] every interval, and puts back in
//! rotation those that pass. It ends when none is ejected, or the pool is
//! dropped or routed away; it never keeps a pool alive while it sleeps.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Endpoint, Pool};

/// A future a [`Probe`] returns.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

/// The health check that puts an ejected instance back in rotation (the
/// daemon gives its own, the one that gates deploys).
pub trait Probe: Send + Sync {
    /// How long to wait between two rounds of checks.
    fn interval(&self) -> Duration;
    /// True when the instance at `addr` answers as healthy.
    fn healthy(&self, addr: SocketAddr) -> ProbeFuture<'_>;
}

/// Probes the ejected endpoints of a pool every health interval and re-admits
/// those that pass. Ends when none is ejected, or the pool is dropped or routed away.
pub(super) async fn probe_ejected(weak: Weak<Pool>) {
    loop {
        let Some(pool) = weak.upgrade() else { return };
        let probe = match pool.probe.lock() {
            Ok(probe) => Arc::clone(&probe),
            Err(_) => return,
        };
        let pending = pool.endpoints.iter().any(Endpoint::is_ejected);
        if !pending || !pool.is_routed() {
            pool.probing.store(false, Ordering::Release);
            // An ejection may have happened between the check and the store;
            // if so and nobody else took over, keep going.
            let again = pool.is_routed() && pool.endpoints.iter().any(Endpoint::is_ejected);
            if !again || pool.probing.swap(true, Ordering::AcqRel) {
                return;
            }
        }
        // Do not keep the pool alive while sleeping.
        drop(pool);
        tokio::time::sleep(probe.interval()).await;
        let Some(pool) = weak.upgrade() else { return };
        let addrs: Vec<(usize, SocketAddr)> = pool
            .endpoints
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_ejected())
            .map(|(i, e)| (i, e.addr))
            .collect();
        drop(pool);
        for (index, addr) in addrs {
            if probe.healthy(addr).await {
                let Some(pool) = weak.upgrade() else { return };
                pool.endpoints[index]
                    .ejected
                    .store(false, Ordering::Release);
                tracing::info!(%addr, slot = %pool.slot(), "endpoint healthy again: back in rotation");
            }
        }
    }
}
