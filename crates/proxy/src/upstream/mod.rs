//! Connections to the apps, for both HTTP paths: the connect and reuse
//! settings (`UpstreamCtx`), opening a TCP connection, the per-endpoint stacks
//! of idle connections (`idle`), and each path's kind of connection: `raw`
//! (the lean path's socket and buffer) and `sender` (hyper's `SendRequest`,
//! HTTP/1.1, or HTTP/2 from `h2` for h2c services), with `body` the request body it sends (read up to a bound first).
//! Which endpoint to use, and when to try again, is `crate::retry`'s.

pub(crate) mod body;
pub(crate) mod h2;
pub(crate) mod idle;
pub(crate) mod raw;
pub(crate) mod sender;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::ProxyError;

/// Largest response head (status line and header lines) accepted from an
/// app, on both paths; a larger one is an upstream failure (502), as nginx's
/// "upstream sent too big header" (nginx's limit is `proxy_buffer_size`, 4
/// or 8 KiB by default).
pub(crate) const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// How many header lines hyper's parser makes room for in a head of at most
/// `bytes`: heads are limited by bytes, as nginx limits them, not by
/// hyper's default of 100 lines. hyper allocates that room for every head it
/// parses once it is set, so it is counted for lines of 8 bytes or more
/// (`x-a: 1` and its line end); the lean path counts exactly (3 bytes).
pub(crate) fn max_lines(bytes: usize) -> usize {
    (bytes / 8).max(100)
}

/// What every pool needs to open and keep upstream connections.
pub(crate) struct UpstreamCtx {
    /// Idle stacks keep one lane per worker thread, plus lane 0 for others.
    pub(crate) lanes: usize,
    pub(crate) connect_timeout: Duration,
    /// How long a sent request waits for its response head.
    pub(crate) response_timeout: Duration,
    /// How long a streamed request body may wait for the client's next bytes
    /// (then 408, the client's error).
    pub(crate) body_timeout: Duration,
    /// How long a write may wait for its peer (an app taking a request body,
    /// a client reading a response) before the exchange is cut.
    pub(crate) send_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_idle: usize,
    /// Upstream connection drivers, probes and idle waiters run here, so
    /// `wait_closed` can tell when they are gone.
    pub(crate) tasks: TaskTracker,
    /// Fired when the proxy shuts down: stop probing, stop pooling.
    pub(crate) shutdown: CancellationToken,
    /// `shutdown` has fired: an atomic the request path reads, where the token
    /// itself would take a lock shared by every worker.
    pub(crate) closing: AtomicBool,
}

/// Opens a TCP connection to `addr` within `timeout`, with TCP_NODELAY (small
/// writes such as request heads must not wait for Nagle).
pub(crate) async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ProxyError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(cause)) => return Err(ProxyError::Connect { addr, cause }),
        Err(_) => return Err(ProxyError::ConnectTimeout { addr }),
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
