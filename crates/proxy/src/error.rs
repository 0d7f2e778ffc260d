//! The proxy's errors: why a change of routes was refused ([`RouteError`], for
//! the owner), and why the proxy answered a request itself, with which status
//! (`ProxyError`, inside the crate).
//!
//! Every request failure is classified by its source here, once, so that
//! forwarding code never looks at error strings: no route (404), nothing to
//! send to (503), connect failed (502), connect timed out (504), upstream broke
//! (502), no response head in time (504), and the client's own fault: a
//! malformed or cut-short request body, a missing or invalid Host, a refused
//! header name (400), a body over the service's limit (413) or a body that
//! stalls (408), which is never the
//! upstream's; an app that does not take the request in time (504) is.
//!
//! As everywhere in teal, a message carries its cause and no error also
//! returns it from `source()`, so a cause is printed once.

use std::io;
use std::net::SocketAddr;

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;

use crate::hold::{Notice, Pause};

/// Why the proxy could not listen or apply routes. The routes in force stay.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// Binding a listener failed (address in use, no permission, ...).
    #[error("cannot listen on {addr}: {cause}")]
    Bind { addr: SocketAddr, cause: io::Error },
    /// The routes would make two services claim one Host, or two default
    /// services.
    #[error("{0}")]
    Conflict(String),
    /// The proxy is shutting down.
    #[error("the proxy is shutting down")]
    Closed,
    /// The TLS listener cannot be set up, or a service's certificate cannot
    /// be served.
    #[error("TLS: {0}")]
    Tls(String),
}

/// An upstream response head the lean path cannot pass on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadResponse {
    #[error("invalid response head from upstream")]
    Head,
    #[error("upstream answered 101 to a request that did not ask to upgrade")]
    Upgrade,
    /// Longer than `upstream::MAX_RESPONSE_HEAD`.
    #[error("upstream sent too big a response head")]
    TooBig,
}

/// A request the proxy could not forward, or whose upstream failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    /// No service matches the Host, and there is no default service.
    #[error("no route for this host")]
    NoRoute,
    /// The service has no backend installed for this listener.
    #[error("no live backend")]
    NoBackend,
    /// Refused: the proxy forwards to its services only (e.g. CONNECT).
    #[error("method not allowed")]
    Method,
    #[error("bad request")]
    BadRequest,
    /// No Host where one is required, several, or an invalid one.
    #[error("missing or invalid Host")]
    BadHost,
    /// A header name with an underscore, with `UnderscoreHeaders::Refuse`.
    #[error("a header name has an underscore")]
    UnderscoreHeader,
    /// The client's request body was malformed (an invalid chunk) or ended
    /// before its length: the client's error, answered 400 when the client
    /// can still read it.
    #[error("the client's request body was malformed or cut short")]
    ClientBody,
    /// The client sent none of its request body for
    /// `ProxyOptions::body_timeout`: the client's error, answered 408.
    #[error("the client's request body stalled")]
    BodyTimeout,
    /// The request body is larger than the service's `max_body`: the
    /// client's error, answered 413.
    #[error("the request body is larger than the service allows")]
    BodyTooLarge,
    #[error("connect to {addr} failed: {cause}")]
    Connect { addr: SocketAddr, cause: io::Error },
    #[error("connect to {addr} timed out")]
    ConnectTimeout { addr: SocketAddr },
    /// No response head within `ProxyOptions::response_timeout` of sending the
    /// request.
    #[error("no response from upstream in time")]
    ResponseTimeout,
    /// The upstream took none of the request for
    /// `ProxyOptions::send_timeout`.
    #[error("upstream did not take the request in time")]
    SendTimeout,
    /// The connection broke before a response head arrived.
    #[error("upstream failed: {0}")]
    Upstream(hyper::Error),
    /// The upstream answered 101 to a request that did not ask to upgrade.
    #[error("unexpected upgrade from upstream")]
    UnexpectedUpgrade,
    /// Reading or writing the upstream connection failed (lean path).
    #[error("upstream failed: {0}")]
    UpstreamIo(io::Error),
    /// The upstream closed the connection before a whole response head (lean path).
    #[error("upstream closed the connection before answering")]
    UpstreamClosed,
    /// The upstream's response head is not valid HTTP/1.1 (lean path).
    #[error("{0}")]
    BadResponse(BadResponse),
    /// A plain-HTTP request for a TLS service: 308 to https on this port.
    #[error("redirected to https")]
    HttpsRedirect(u16),
    /// The service (or this host of it) is in maintenance: 503 with its notice.
    #[error("in maintenance")]
    Maintenance(Arc<Notice>),
    /// The service is paused: the request waits (`Proxy::after_pause`).
    #[error("paused")]
    Paused(Arc<Pause>),
    /// Held by a pause until its time ran out, or too many were held: 503,
    /// `Retry-After` in seconds.
    #[error("paused: not served in time")]
    Held(u32),
    /// An upgrade (websocket) asked of an h2c service: HTTP/2 to the app has
    /// no HTTP/1.1 upgrade to carry it.
    #[error("upgrades are not supported by an h2c service")]
    UpgradeToH2c,
}

impl ProxyError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::HttpsRedirect(_) => StatusCode::PERMANENT_REDIRECT,
            ProxyError::NoBackend
            | ProxyError::Maintenance(_)
            | ProxyError::Paused(_)
            | ProxyError::Held(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Method => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::UpgradeToH2c => StatusCode::NOT_IMPLEMENTED,
            ProxyError::BadRequest
            | ProxyError::BadHost
            | ProxyError::UnderscoreHeader
            | ProxyError::ClientBody => StatusCode::BAD_REQUEST,
            ProxyError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::Connect { .. }
            | ProxyError::Upstream(_)
            | ProxyError::UnexpectedUpgrade
            | ProxyError::UpstreamIo(_)
            | ProxyError::UpstreamClosed
            | ProxyError::BadResponse(_) => StatusCode::BAD_GATEWAY,
            ProxyError::ConnectTimeout { .. }
            | ProxyError::ResponseTimeout
            | ProxyError::SendTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The short text body the client gets.
    pub(crate) fn body(&self) -> Bytes {
        if let ProxyError::Maintenance(notice) = self {
            return notice.body.clone();
        }
        Bytes::from_static(match self {
            ProxyError::Maintenance(_) | ProxyError::Paused(_) | ProxyError::Held(_) => {
                b"service unavailable: paused, try again later\n"
            }
            ProxyError::NoRoute => b"no route for this host\n",
            ProxyError::HttpsRedirect(_) => b"",
            ProxyError::NoBackend => b"no live backend\n",
            ProxyError::Method => b"method not allowed\n",
            ProxyError::UpgradeToH2c => {
                b"not implemented: this service speaks HTTP/2 (h2c) to its app, which carries no upgrades\n"
            }
            ProxyError::BadRequest => b"bad request\n",
            ProxyError::BadHost => b"bad request: missing or invalid Host\n",
            ProxyError::UnderscoreHeader => b"bad request: a header name has an underscore\n",
            ProxyError::ClientBody => b"bad request: malformed or incomplete request body\n",
            ProxyError::Connect { .. } => b"bad gateway: upstream connect failed\n",
            ProxyError::ConnectTimeout { .. } => b"gateway timeout: upstream connect timed out\n",
            ProxyError::ResponseTimeout => b"gateway timeout: the app did not answer in time\n",
            ProxyError::SendTimeout => {
                b"gateway timeout: the app did not take the request in time\n"
            }
            ProxyError::BodyTimeout => b"request timeout: the request body stalled\n",
            ProxyError::BodyTooLarge => b"payload too large: the request body exceeds the limit\n",
            ProxyError::Upstream(_)
            | ProxyError::UnexpectedUpgrade
            | ProxyError::UpstreamIo(_)
            | ProxyError::UpstreamClosed
            | ProxyError::BadResponse(_) => b"bad gateway: upstream failed\n",
        })
    }

    /// The body's `Content-Type`.
    pub(crate) fn content_type(&self) -> &'static str {
        match self {
            ProxyError::Maintenance(notice) => notice.content_type,
            _ => "text/plain; charset=utf-8",
        }
    }

    /// Seconds for a `Retry-After` header, when the answer has one.
    pub(crate) fn retry_after(&self) -> Option<u32> {
        match self {
            ProxyError::Maintenance(notice) => Some(notice.retry_after),
            ProxyError::Paused(pause) => Some(pause.retry_after()),
            ProxyError::Held(seconds) => Some(*seconds),
            _ => None,
        }
    }
}
