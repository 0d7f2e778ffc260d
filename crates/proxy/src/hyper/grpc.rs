//! What hyper's path needs to know of HTTP/2 to an app (h2c services, gRPC):
//! the request head it sends (absolute URI, `te: trailers` kept) and whether
//! a gRPC call failed, from `grpc-status` in the response head (a
//! trailers-only answer) or in its trailers, so verify windows and counters
//! see a failed call like a 5xx.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Uri, Version, request};

use crate::error::ProxyError;

static GRPC_STATUS: &str = "grpc-status";

/// True when the client asked for trailers (`te: trailers`, the only TE
/// HTTP/2 allows, which gRPC requires). Read before the hop-by-hop headers go.
pub(crate) fn wants_trailers(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
}

/// Turns the HTTP/1.1 upstream head `to_upstream` made into an HTTP/2 one:
/// the Host becomes the URI's authority (`:authority`), and `te: trailers`
/// is sent again when the client asked for it.
pub(crate) fn to_h2c(parts: &mut request::Parts, trailers: bool) -> Result<(), ProxyError> {
    let host = parts
        .headers
        .remove(header::HOST)
        .ok_or(ProxyError::BadHost)?;
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    parts.uri = Uri::builder()
        .scheme("http")
        .authority(host.as_bytes())
        .path_and_query(path)
        .build()
        .map_err(|_| ProxyError::BadHost)?;
    parts.version = Version::HTTP_2;
    if trailers {
        parts
            .headers
            .insert(header::TE, HeaderValue::from_static("trailers"));
    }
    Ok(())
}

/// What a response head of an h2c service says of its call.
pub(crate) enum Verdict {
    /// Known now: whether it is an error (a 5xx, or a non-zero `grpc-status`).
    Now(bool),
    /// A gRPC call whose status comes in the trailers.
    InTrailers,
}

/// The verdict on a response head (`status_error`: its status is a 5xx).
pub(crate) fn verdict(status_error: bool, headers: &HeaderMap) -> Verdict {
    if status_error {
        return Verdict::Now(true);
    }
    if let Some(ok) = status_ok(headers) {
        return Verdict::Now(!ok);
    }
    let grpc = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if grpc {
        Verdict::InTrailers
    } else {
        Verdict::Now(false)
    }
}

/// Declares gRPC's trailers in the head for an HTTP/1.1 client: hyper's
/// HTTP/1.1 sends only the trailer fields a `Trailer` header names (and only
/// to a client that sent `te: trailers`).
pub(crate) fn declare_trailers(headers: &mut HeaderMap) {
    headers.insert(
        header::TRAILER,
        HeaderValue::from_static("grpc-status, grpc-message, grpc-status-details-bin"),
    );
}

/// `grpc-status` of a head or trailers: `Some(true)` for OK (0), `None`
/// when there is none.
pub(crate) fn status_ok(headers: &HeaderMap) -> Option<bool> {
    headers
        .get(GRPC_STATUS)
        .map(|v| v.as_bytes().trim_ascii() == b"0")
}

#[cfg(test)]
mod tests;
