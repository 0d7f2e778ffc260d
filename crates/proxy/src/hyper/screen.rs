//! What hyper's path refuses before it routes a request, as nginx does: no
//! Host on HTTP/1.1 or HTTP/2, several Host lines, an invalid Host or
//! authority (RFC 9112 3.2: 400), and header names with an underscore, which
//! are dropped (nginx's default) or refused, as `ProxyOptions` says. A refusal
//! is a 400 that closes the connection (nginx closes after a 400 too), counted
//! as a malformed request (`ClientConnections::malformed_requests`), never
//! against a slot. The lean path hands these requests here (`lean::request`).

use std::sync::atomic::Ordering;

use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, Version};

use super::body::ProxyBody;
use super::forward::local;
use crate::error::ProxyError;
use crate::routes::valid_host;
use crate::{Proxy, UnderscoreHeaders};

/// Checks `req`'s Host and drops (or refuses) its header names with an
/// underscore.
pub(crate) fn screen<B>(
    req: &mut Request<B>,
    underscores: UnderscoreHeaders,
) -> Result<(), ProxyError> {
    check_host(req)?;
    if underscores == UnderscoreHeaders::Pass {
        return Ok(());
    }
    let underscored = |name: &HeaderName| name.as_str().as_bytes().contains(&b'_');
    if !req.headers().keys().any(underscored) {
        return Ok(());
    }
    if underscores == UnderscoreHeaders::Refuse {
        return Err(ProxyError::UnderscoreHeader);
    }
    let names: Vec<HeaderName> = req
        .headers()
        .keys()
        .filter(|n| underscored(n))
        .cloned()
        .collect();
    for name in names {
        req.headers_mut().remove(name);
    }
    Ok(())
}

/// RFC 9112 3.2: an HTTP/1.1 request has exactly one Host line, with a valid
/// value; an absolute-form target's authority is checked too. An HTTP/2
/// request has `:authority` or Host (RFC 9113 8.3.1). HTTP/1.0 may have none.
fn check_host<B>(req: &Request<B>) -> Result<(), ProxyError> {
    let mut lines = req.headers().get_all(header::HOST).iter();
    let host = lines.next();
    if lines.next().is_some() {
        return Err(ProxyError::BadHost);
    }
    let authority = req.uri().authority();
    let valid = host.is_none_or(|host| valid_host(host.as_bytes()))
        && authority.is_none_or(|authority| valid_host(authority.as_str().as_bytes()));
    let present = match req.version() {
        Version::HTTP_2 | Version::HTTP_3 => host.is_some() || authority.is_some(),
        Version::HTTP_09 | Version::HTTP_10 => true,
        _ => host.is_some(),
    };
    if valid && present {
        Ok(())
    } else {
        Err(ProxyError::BadHost)
    }
}

impl Proxy {
    /// The 400 for a request `screen` refused, counted as malformed; over
    /// HTTP/1 the connection closes after it.
    pub(crate) fn refuse_unrouted(
        &self,
        error: &ProxyError,
        version: Version,
    ) -> Response<ProxyBody> {
        self.conns
            .malformed_requests
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%error, "request refused before routing");
        let mut response = local(error);
        if version < Version::HTTP_2 {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
