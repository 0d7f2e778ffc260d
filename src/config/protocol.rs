//! `protocol` of a service (`"http1"`, the default, or `"h2c"`) and the gRPC
//! health check it allows (`[services.NAME.health] grpc`).

use std::collections::BTreeMap;

use toml::Spanned;

use super::conflicts::ServiceSite;
use super::invalid::Invalid;
use super::raw::RawGrpcHealth;
use crate::spec::{Protocol, ServiceSpec};

/// The service's `protocol`.
pub(super) fn protocol(raw: Option<&Spanned<String>>, section: &str) -> Result<Protocol, Invalid> {
    let Some(raw) = raw else {
        return Ok(Protocol::Http1);
    };
    match raw.get_ref().as_str() {
        "http1" => Ok(Protocol::Http1),
        "h2c" => Ok(Protocol::H2c),
        other => Err(Invalid::at(
            raw,
            format!(
                "{section}.protocol must be \"http1\" or \"h2c\" (HTTP/2 with prior knowledge, e.g. for gRPC), got {other:?}"
            ),
        )),
    }
}

/// `health.grpc`: the gRPC service name to check (`""` for the whole
/// server), or None. It needs `protocol = "h2c"`.
pub(super) fn grpc_health(
    raw: Option<&Spanned<RawGrpcHealth>>,
    protocol: Protocol,
    section: &str,
) -> Result<Option<String>, Invalid> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let name = match raw.get_ref() {
        RawGrpcHealth::On(false) => return Ok(None),
        RawGrpcHealth::On(true) => String::new(),
        RawGrpcHealth::Service(name) => name.clone(),
    };
    if protocol != Protocol::H2c {
        return Err(Invalid::at(
            raw,
            format!(
                "{section}.health.grpc needs the service to speak HTTP/2: add protocol = \"h2c\" to [{section}]"
            ),
        ));
    }
    Ok(Some(name))
}

/// Under the nginx router an h2c service needs its own TLS server: gRPC
/// clients speak HTTP/2, which nginx before 1.25.1 cannot take from plain-HTTP
/// clients on the listener HTTP/1.1 clients share, so they reach it over TLS
/// (HTTP/2 by ALPN). HTTP/1.1 clients are served on both listeners.
pub(super) fn nginx_reaches_h2c(
    services: &BTreeMap<String, ServiceSpec>,
    sites: &[ServiceSite],
) -> Result<(), Invalid> {
    let unreachable = services
        .values()
        .find(|spec| spec.protocol == Protocol::H2c && spec.tls.is_none() && !spec.acme);
    let Some(spec) = unreachable else {
        return Ok(());
    };
    let message = format!(
        "services.{0} has protocol = \"h2c\", and with router = \"nginx\" its gRPC clients reach it over TLS only (HTTP/2 by ALPN): give [services.{0}] tls (certificate files, or \"acme\") and [proxy] a [proxy.tls] listener, or use the builtin router, which also takes HTTP/2 without TLS",
        spec.name
    );
    Err(match sites.iter().find(|site| site.name == spec.name) {
        Some(site) => Invalid {
            span: Some(site.name_span.clone()),
            message,
        },
        None => Invalid::nowhere(message),
    })
}

#[cfg(test)]
mod tests;
