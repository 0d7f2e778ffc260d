//! The proxy's tunables, with the defaults a daemon uses unless configured.

use std::time::Duration;

/// Tunables of the proxy. [`Proxy::bind`] uses the defaults.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// A client must send a complete request head within this time, or its
    /// connection is closed (slowloris protection). Also bounds keep-alive idle.
    pub header_read_timeout: Duration,
    /// Largest request head accepted (HTTP/1.1 read buffer, h2 header list);
    /// beyond it HTTP/1.1 clients get 431. At least 8 KiB.
    pub max_header_bytes: usize,
    /// Longest wait for an upstream TCP connect (then 504, or another endpoint).
    pub connect_timeout: Duration,
    /// Longest wait for an instance's response head once the request is sent
    /// (then 504; the request is not sent again).
    pub response_timeout: Duration,
    /// How much of a request body the proxy reads before it chooses an
    /// instance and connects: a body this size or smaller arrives whole
    /// first, so a client that stalls holds only its own connection. A
    /// larger or chunked body streams once this much has arrived.
    pub body_buffer: usize,
    /// A client that sends none of its request body for this long gets 408
    /// (a client error); the upstream request, if any, is aborted.
    pub body_timeout: Duration,
    /// A peer that takes none of what the proxy writes for this long is cut:
    /// the app not taking a request body (504, an upstream failure), or the
    /// client not reading its response (closed; its upstream connection freed).
    pub send_timeout: Duration,
    /// Idle upstream connections older than this are not reused. Keep it below
    /// the apps' own keep-alive timeout (often 5 s).
    pub upstream_idle_timeout: Duration,
    /// Idle upstream connections kept per endpoint (and per worker).
    pub max_idle_per_endpoint: usize,
    /// Worker threads serving connections, each with its own event loop.
    pub workers: usize,
    /// Streams an h2c client may have open at once on one connection,
    /// advertised in SETTINGS; streams past it are refused (REFUSED_STREAM)
    /// before they reach an instance. At least 1.
    pub max_concurrent_streams: u32,
    /// What happens to request header lines whose name has an underscore.
    pub underscores_in_headers: UnderscoreHeaders,
    /// Where the TLS listener binds (none: no TLS). Services give their
    /// certificates with their routes (`Service::tls`).
    pub tls_listen: Option<std::net::SocketAddr>,
    /// Plain-HTTP requests for a service with a certificate get 308 to https
    /// (but ACME challenges, `/.well-known/acme-challenge/`).
    pub tls_redirect: bool,
    /// Where a line per request goes (none: no access log). Request ids are
    /// made (and passed to the app as `x-request-id`) only with one.
    pub access_log: Option<std::sync::Arc<crate::AccessLog>>,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            connect_timeout: Duration::from_secs(2),
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            body_buffer: DEFAULT_BODY_BUFFER,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            upstream_idle_timeout: Duration::from_secs(2),
            max_idle_per_endpoint: 256,
            workers: default_workers(),
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            underscores_in_headers: UnderscoreHeaders::Drop,
            tls_listen: None,
            tls_redirect: true,
            access_log: None,
        }
    }
}

/// `ProxyOptions::response_timeout` unless configured: what the nginx router
/// uses too (`proxy_read_timeout`).
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);

/// `ProxyOptions::body_buffer` unless configured: as much as the lean path
/// takes (its largest `Content-Length`), nginx's `client_body_buffer_size` is
/// 8 or 16 KiB (it then buffers to a file).
pub const DEFAULT_BODY_BUFFER: usize = 64 * 1024;

/// `ProxyOptions::body_timeout` unless configured: nginx's
/// `client_body_timeout`.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// `ProxyOptions::send_timeout` unless configured: nginx's `send_timeout`
/// (toward clients) and `proxy_send_timeout` (toward the app).
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// `ProxyOptions::max_concurrent_streams` unless configured: nginx's
/// `http2_max_concurrent_streams`.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 128;

/// Request header lines whose name has an underscore (`X_Forwarded_For`).
/// Many apps (CGI, WSGI, Rack, PHP) turn `-` and `_` into the same variable
/// name, so such a line can pass for one the proxy sets or checks
/// (`X-Forwarded-For`). nginx drops them by default
/// (`underscores_in_headers off`); so does teal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnderscoreHeaders {
    /// Not forwarded; the request goes on without them (nginx's default).
    #[default]
    Drop,
    /// Forwarded as they came (nginx's `underscores_in_headers on`).
    Pass,
    /// The request is answered 400 and not forwarded.
    Refuse,
}

/// One worker per core.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
