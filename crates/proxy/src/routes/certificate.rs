//! Changing a service's certificate without changing its routes (a renewal,
//! the first certificate of an ACME service), and the one place the
//! certificate and the https redirect are stored, which `install` uses too.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::ServiceRoutes;
use crate::Proxy;
use crate::error::RouteError;
use crate::tls::ServiceCert;

impl Proxy {
    /// Serves `cert` to new TLS connections for `service`'s hosts (None: no
    /// certificate, its names fail the handshake and plain HTTP serves it,
    /// with no redirect). Routes stay as they are; open connections keep
    /// the certificate their handshake chose. The service must have routes.
    pub async fn set_certificate(
        &self,
        service: &str,
        cert: Option<ServiceCert>,
    ) -> Result<(), RouteError> {
        if cert.is_some() && self.tls.is_none() {
            return Err(RouteError::Tls(format!(
                "service {service:?} has a certificate but the proxy has no TLS listener"
            )));
        }
        let _writer = self.writer.lock().await;
        let table = self.table.load();
        let Some(routes) = table.service(service) else {
            return Err(RouteError::Tls(format!(
                "service {service:?} has no routes to give a certificate to"
            )));
        };
        self.store_cert(routes, cert.as_ref());
        tracing::info!(service, tls = cert.is_some(), "certificate installed");
        Ok(())
    }

    /// Stores `service`'s certificate and its redirect: with a certificate,
    /// the certificate first and then the redirect (a request redirected to
    /// https finds the certificate there); without one, the redirect ends
    /// first. Called with the writer lock held.
    pub(crate) fn store_cert(&self, service: &ServiceRoutes, cert: Option<&ServiceCert>) {
        match (cert, &self.tls) {
            (Some(cert), Some((addr, _))) => {
                service.cert.store(Some(Arc::clone(&cert.key)));
                let port = if self.opts.tls_redirect {
                    addr.port()
                } else {
                    0
                };
                service.redirect_port.store(port, Ordering::Relaxed);
            }
            (None, _) | (Some(_), None) => {
                service.redirect_port.store(0, Ordering::Relaxed);
                service.cert.store(None);
            }
        }
    }
}
