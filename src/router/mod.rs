//! Routers move traffic between slots. `deploy/` reaches them only through the
//! [`Router`] trait: the builtin proxy implements it with an atomic pool switch,
//! and the nginx router (`nginx/`) with a config rewrite and a confirmed reload.
//!
//! A router is told, per service, which backend production goes to and which one
//! the preview listener goes to. It owns listeners and in-flight accounting; it
//! does not start or stop instances.

mod bind;
pub mod builtin;
pub mod nginx;

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;

use crate::slot::Slot;
use crate::spec::ServiceSpec;
use crate::state::Gates;
use crate::wire::CertificateStatus;

// The router's vocabulary is the builtin proxy's (a crate of its own that
// knows nothing of deploys): the instances of a slot, a drain's outcome,
// traffic counters, client connections, and the verify window's watch.
pub use teal_proxy::{
    Backend, ClientConnections, DrainReport, ErrorBudget, TrafficStats, Watch, WindowCounters,
    WindowStats,
};

/// Why a router could not apply a change. The previous routes stay in force.
/// Each message carries its cause (nothing is also a `source()`).
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("cannot listen on {addr}: {cause}{hint}")]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
        /// Who listens there already, or what a low port needs (`bind.rs`).
        hint: String,
    },
    #[error("{0}")]
    Conflict(String),
    /// A value the router cannot use (a name it refuses, an unsupported address).
    #[error("{0}")]
    Invalid(String),
    /// nginx refused a new config (`nginx -t`, the reload, or starting): its own
    /// words. The previous config stays in force.
    #[error("nginx refused the new config ({stage}): {message}")]
    Nginx { stage: String, message: String },
    #[error("{0}")]
    Other(String),
}

#[async_trait]
pub trait Router: Send + Sync {
    /// Installs the service's routes in one atomic step: production to `live`,
    /// the preview listener (when the spec has one) to `preview`. `None` means
    /// "nothing there": production answers 503, preview answers 503.
    async fn set_routes(
        &self,
        spec: &ServiceSpec,
        live: Option<Backend>,
        preview: Option<Backend>,
    ) -> Result<(), RouterError>;

    /// At daemon start: production of each service to its restored live slot
    /// (`None`: nothing there), every preview to nothing, as one change where
    /// the router can make it one (nginx: one config, at most one reload, none
    /// when nginx already runs exactly these routes). The default installs
    /// them one service at a time.
    async fn restore_routes(
        &self,
        services: &[(&ServiceSpec, Option<Backend>)],
    ) -> Result<(), RouterError> {
        for (spec, live) in services {
            self.set_routes(spec, live.clone(), None).await?;
        }
        Ok(())
    }

    /// Sets `spec`'s maintenance and pause whole (what `gates` lacks is
    /// lifted), before or after its routes are installed; later route
    /// changes keep them. Production requests only: the preview listener is
    /// never gated. A router that cannot (nginx cannot hold requests) refuses
    /// and changes nothing.
    async fn set_gate(&self, spec: &ServiceSpec, gates: &Gates) -> Result<(), RouterError>;

    /// Waits until nothing is in flight to `slot` of `service` any more, or `timeout`.
    /// Requests that started before the last `set_routes` moved away from it count.
    /// (nginx: waits for the worker processes earlier reloads retired; `remaining`
    /// then counts those processes, not requests.)
    async fn drain(&self, service: &str, slot: Slot, timeout: Duration) -> DrainReport;

    /// Traffic counters of one slot, since that slot's pool was created. (nginx
    /// serves the requests itself: all zero.)
    fn stats(&self, service: &str, slot: Slot) -> TrafficStats;

    /// The addresses the router actually listens on (production first), useful
    /// when configured with port 0 (nginx: the configured addresses; no port 0).
    fn listen_addrs(&self) -> Vec<SocketAddr>;

    /// The address the TLS listener (`[proxy.tls] listen`) is bound to, if
    /// this router has one.
    fn tls_addr(&self) -> Option<SocketAddr>;

    /// The address a service's preview listener is bound to, if any.
    fn preview_addr(&self, service: &str) -> Option<SocketAddr>;

    /// Arms a verify window on `slot` of `service` (see [`Watch`]): from now on
    /// its requests, failures and latency are counted in the returned [`Watch`],
    /// including those of a pool the next `set_routes` creates for the slot. When
    /// the failures cross `budget` and production points at `slot`, the router
    /// moves production to `fallback` by itself, in one atomic step, and trips
    /// the watch. Dropping the watch disarms it. None: this router cannot watch
    /// traffic (verification is then unavailable).
    fn watch(
        &self,
        service: &str,
        slot: Slot,
        fallback: Option<Slot>,
        budget: ErrorBudget,
    ) -> Option<Watch> {
        let _ = (service, slot, fallback, budget);
        None
    }

    /// Client connections open now, and how many of them are parked (idle,
    /// holding no buffers). None: this router does not serve them itself (nginx).
    fn client_connections(&self) -> Option<ClientConnections> {
        None
    }

    /// ACME HTTP-01: from now on answer `GET /.well-known/acme-challenge/{token}`
    /// on the plain listener, whatever the Host, with `key_authorization`
    /// (`Some`), or stop answering it (`None`).
    async fn set_challenge(
        &self,
        token: &str,
        key_authorization: Option<&str>,
    ) -> Result<(), RouterError>;

    /// The certificate files of `spec.tls` changed (a renewal, or the first
    /// certificate of an ACME service): serve them to new TLS connections,
    /// routes unchanged; open connections keep the certificate they began with.
    async fn reload_certificate(&self, spec: &ServiceSpec) -> Result<(), RouterError>;

    /// The certificates teal orders itself (ACME), for `teal status`. None
    /// but the ACME layer (`crate::acme`) has any.
    fn certificates(&self) -> Vec<CertificateStatus> {
        Vec::new()
    }

    /// Stops serving at daemon shutdown, after the shutdown token fired: open
    /// client connections get up to `grace` to finish. Routes are not changed
    /// after this.
    async fn close(&self, grace: Duration);

    /// Stops serving because a successor daemon took over (`Daemon::leave`),
    /// after the shutdown token fired. The default is [`Router::close`] (the
    /// builtin proxy has handed its sockets over by then). A router whose
    /// traffic another process serves (nginx) leaves that process running and
    /// its config in place: the successor adopts it, and clients never notice.
    async fn leave(&self, grace: Duration) {
        self.close(grace).await;
    }
}
