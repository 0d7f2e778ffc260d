//! The builtin router: [`Router`] on top of the builtin [`Proxy`] (the
//! `teal_proxy` crate), which switches traffic by swapping pool pointers.
//! This file only adapts: a [`ServiceSpec`] becomes the proxy's [`Service`],
//! the service's health check becomes the [`Probe`] that re-admits ejected
//! instances, and the proxy's errors become [`RouterError`]s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use teal_proxy::{Probe, ProbeFuture, Proxy, RouteError, Service, ServiceCert};

use crate::router::{
    Backend, ClientConnections, DrainReport, ErrorBudget, Router, RouterError, TrafficStats, Watch,
};
use crate::slot::Slot;
use crate::spec::{HealthSpec, ServiceSpec};

#[async_trait]
impl Router for Proxy {
    async fn set_routes(
        &self,
        spec: &ServiceSpec,
        live: Option<Backend>,
        preview: Option<Backend>,
    ) -> Result<(), RouterError> {
        // Read again at every change of routes: certificate files renewed
        // on disk are served from the service's next deploy, promote or
        // rollback (the config check read them already; this one can only
        // fail if they changed since).
        let tls = match &spec.tls {
            Some(files) => Some(
                ServiceCert::from_pem_files(&files.cert, &files.key).map_err(|error| {
                    RouterError::Invalid(format!("service {:?}: {error}", spec.name))
                })?,
            ),
            None => None,
        };
        let service = Service {
            name: spec.name.clone(),
            hosts: spec.hosts.clone(),
            preview: spec.preview,
            probe: Arc::new(HealthProbe(spec.health.clone())),
            tls,
        };
        Ok(self.install(&service, live, preview).await?)
    }

    async fn drain(&self, service: &str, slot: Slot, timeout: Duration) -> DrainReport {
        Proxy::drain(self, service, slot, timeout).await
    }

    fn stats(&self, service: &str, slot: Slot) -> TrafficStats {
        Proxy::stats(self, service, slot)
    }

    fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.addrs()
    }

    fn preview_addr(&self, service: &str) -> Option<SocketAddr> {
        self.preview_listen_addr(service)
    }

    fn watch(
        &self,
        service: &str,
        slot: Slot,
        fallback: Option<Slot>,
        budget: ErrorBudget,
    ) -> Option<Watch> {
        self.watch_slot(service, slot, fallback, budget)
    }

    fn client_connections(&self) -> Option<ClientConnections> {
        Some(Proxy::client_connections(self))
    }

    async fn close(&self, grace: Duration) {
        self.wait_closed(grace).await;
    }
}

/// A service's health check, as the proxy's re-admission probe.
struct HealthProbe(HealthSpec);

impl Probe for HealthProbe {
    fn interval(&self) -> Duration {
        self.0.interval
    }

    fn healthy(&self, addr: SocketAddr) -> ProbeFuture<'_> {
        Box::pin(async move { crate::health::probe(addr, &self.0).await.is_healthy() })
    }
}

impl From<RouteError> for RouterError {
    fn from(error: RouteError) -> RouterError {
        match error {
            RouteError::Bind { addr, cause } => RouterError::Bind { addr, cause },
            RouteError::Conflict(message) => RouterError::Conflict(message),
            RouteError::Closed => RouterError::Other(error.to_string()),
            RouteError::Tls(message) => RouterError::Invalid(message),
        }
    }
}
