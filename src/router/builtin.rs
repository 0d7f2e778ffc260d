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
    CertError, ErrorPages, GateSpec, MaintenanceSpec, PauseSpec, Probe, ProbeFuture, Proxy,
    RequestPolicy, RouteError, Service, ServiceCert, UpstreamProtocol,
};

use crate::router::{
    Backend, ClientConnections, DrainReport, ErrorBudget, Router, RouterError, TrafficStats, Watch,
};
use crate::slot::Slot;
use crate::spec::{HealthSpec, Protocol, ServiceSpec};
use crate::state::Gates;

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

/// `spec`'s body limit and error pages as the proxy holds them (the pages
/// were read and checked when the config loaded).
fn policy(spec: &ServiceSpec) -> Result<RequestPolicy, RouterError> {
    let mut error_pages = ErrorPages::default();
    for (status, page) in &spec.policy.error_pages {
        error_pages
            .set(*status, bytes::Bytes::from(page.clone()))
            .map_err(|error| RouterError::Invalid(format!("service {}: {error}", spec.name)))?;
    }
    Ok(RequestPolicy {
        max_body: spec.policy.max_body,
        error_pages,
    })
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
            policy: policy(spec)?,
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

    async fn set_gate(&self, spec: &ServiceSpec, gates: &Gates) -> Result<(), RouterError> {
        let gate = GateSpec {
            maintenance: gates
                .maintenance
                .iter()
                .map(|m| {
                    let (body, content_type) = maintenance_body(spec, m.message.as_deref());
                    MaintenanceSpec {
                        host: m.host.clone(),
                        body,
                        content_type,
                        retry_after: m.retry_after,
                    }
                })
                .collect(),
            pause: gates
                .pause
                .iter()
                .map(|p| PauseSpec {
                    host: p.host.clone(),
                    timeout: Duration::from_millis(p.timeout_ms),
                    retry_after: p.retry_after,
                })
                .collect(),
        };
        Proxy::set_gate(self, &spec.name, &gate);
        Ok(())
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

    fn tls_addr(&self) -> Option<SocketAddr> {
        Proxy::tls_addr(self)
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

/// The one place a maintenance 503's body and `Content-Type` are chosen:
/// the `--message` when one was given, else the service's 503 error page
/// when it has one, else the default text.
fn maintenance_body(spec: &ServiceSpec, message: Option<&str>) -> (bytes::Bytes, &'static str) {
    // The service's 503 page, unless a message was given.
    if message.is_none()
        && let Some(page) = spec.policy.error_pages.get(&503)
    {
        return (bytes::Bytes::from(page.clone()), "text/html; charset=utf-8");
    }
    let text = match message {
        Some(message) if message.ends_with('\n') => message.to_string(),
        Some(message) => format!("{message}\n"),
        None => format!(
            "{} is down for maintenance; please try again later\n",
            spec.name
        ),
    };
    (bytes::Bytes::from(text), "text/plain; charset=utf-8")
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
            RouteError::Bind { addr, cause } => RouterError::Bind {
                hint: super::bind::hint(addr, &cause),
                addr,
                cause,
            },
            RouteError::Conflict(message) => RouterError::Conflict(message),
            RouteError::Closed => RouterError::Other(error.to_string()),
            RouteError::Tls(message) => RouterError::Invalid(message),
        }
    }
}
