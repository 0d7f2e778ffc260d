//! The builtin router: [`Router`] on top of the builtin [`Proxy`] (the
//! `teal_proxy` crate), which switches traffic by swapping pool pointers.
//! This file only adapts: a [`ServiceSpec`] becomes the proxy's [`Service`],
//! the service's health check becomes the [`Probe`] that re-admits ejected
//! instances, and the proxy's errors become [`RouterError`]s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use std::path::Path;

use teal_proxy::{
    CertError, Probe, ProbeFuture, Proxy, RouteError, Service, ServiceCert, UpstreamProtocol,
};

use crate::router::{
    Backend, ClientConnections, DrainReport, ErrorBudget, Router, RouterError, TrafficStats, Watch,
};
use crate::slot::Slot;
use crate::spec::{HealthSpec, Protocol, ServiceSpec};

/// What is wrong with a service's certificate files, as the builtin proxy
/// would load them: `message` says it, `about_key` tells whether it is the
/// key file's fault (else the certificate file's).
#[derive(Debug)]
pub struct CertProblem {
    pub message: String,
    pub about_key: bool,
}

/// Loads `cert` and `key` as the builtin proxy will serve them and checks
/// that the certificate covers every one of `hosts`. The config loader asks
/// here, so that it needs none of the proxy's types.
pub fn check_cert_files(cert: &Path, key: &Path, hosts: &[String]) -> Result<(), CertProblem> {
    let loaded = ServiceCert::from_pem_files(cert, key).map_err(|error| {
        let about_key = match &error {
            CertError::Read { path, .. } => path == key,
            CertError::NoKey { .. } | CertError::BadKey { .. } | CertError::Mismatch { .. } => true,
            _ => false,
        };
        CertProblem {
            message: error.to_string(),
            about_key,
        }
    })?;
    match loaded.uncovered(hosts) {
        Some(host) => Err(CertProblem {
            message: format!(
                "the certificate in {} does not cover host {host:?}; clients asking for it would refuse the connection",
                cert.display()
            ),
            about_key: false,
        }),
        None => Ok(()),
    }
}

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
        let tls = load_cert(spec)?;
        let service = Service {
            name: spec.name.clone(),
            hosts: spec.hosts.clone(),
            preview: spec.preview,
            probe: Arc::new(HealthProbe(spec.health.clone())),
            tls,
            protocol: match spec.protocol {
                Protocol::Http1 => UpstreamProtocol::Http1,
                Protocol::H2c => UpstreamProtocol::H2c,
            },
        };
        Ok(self.install(&service, live, preview).await?)
    }

    async fn set_challenge(
        &self,
        token: &str,
        key_authorization: Option<&str>,
    ) -> Result<(), RouterError> {
        Proxy::set_challenge(self, token, key_authorization);
        Ok(())
    }

    async fn reload_certificate(&self, spec: &ServiceSpec) -> Result<(), RouterError> {
        let cert = load_cert(spec)?;
        Ok(self.set_certificate(&spec.name, cert).await?)
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

/// `spec.tls`'s files, read now, as the proxy serves them.
fn load_cert(spec: &ServiceSpec) -> Result<Option<ServiceCert>, RouterError> {
    let Some(files) = &spec.tls else {
        return Ok(None);
    };
    ServiceCert::from_pem_files(&files.cert, &files.key)
        .map(Some)
        .map_err(|error| RouterError::Invalid(format!("service {:?}: {error}", spec.name)))
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
