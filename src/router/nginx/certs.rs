//! Which certificate files nginx can load now, read before every config is
//! rendered: one unreadable or mismatched file must affect only its own
//! service. nginx loads every `ssl_certificate` of a config at once, so one
//! bad file would make `nginx -t` refuse every change, every service's
//! deploys and teal's own start included.
//!
//! The files are checked as the config loader and the builtin proxy check
//! them (`router::builtin::check_cert_files`: readable, the key matches, every
//! host covered). A change that brings a service its certificate (its own
//! routes, `reload_certificate`) fails when the files do not load; another
//! service's change renders that service without its TLS server instead (its
//! names then fail the handshake, and its plain requests are not redirected
//! to it) and says so in the log, until its files are good again.

use super::routes::{RouteSet, ServiceRoute};
use crate::router::RouterError;
use crate::router::builtin::check_cert_files;
use crate::spec::ServiceSpec;

/// Why `spec`'s certificate files cannot be served, if they cannot.
pub(crate) fn check(spec: &ServiceSpec) -> Result<(), RouterError> {
    let Some(files) = &spec.tls else {
        return Ok(());
    };
    check_cert_files(&files.cert, &files.key, &spec.hosts).map_err(|problem| {
        RouterError::Invalid(format!(
            "service {:?}: its certificate cannot be served: {}",
            spec.name, problem.message
        ))
    })
}

/// `routes` as nginx can load it: every service whose certificate files do
/// not load now loses its TLS server (logged).
pub(crate) fn servable(routes: &RouteSet) -> RouteSet {
    let mut out = routes.clone();
    for service in out.services.values_mut() {
        if let Err(message) = loads(service) {
            tracing::error!(
                service = %service.name,
                "serving the service without TLS until its certificate files load again: {message}"
            );
            service.tls = None;
        }
    }
    out
}

fn loads(service: &ServiceRoute) -> Result<(), String> {
    let Some(files) = &service.tls else {
        return Ok(());
    };
    check_cert_files(&files.cert, &files.key, &service.hosts).map_err(|problem| problem.message)
}
