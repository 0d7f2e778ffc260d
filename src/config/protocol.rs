//! `protocol` of a service (`"http1"`, the default, or `"h2c"`) and the gRPC
//! health check it allows (`[services.NAME.health] grpc`).

use toml::Spanned;

use super::invalid::Invalid;
use super::raw::RawGrpcHealth;
use crate::spec::Protocol;

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

#[cfg(test)]
mod tests;
