//! One client connection, start to end: h2c (prior knowledge) or HTTP/1.1, told
//! apart by peeking at the first bytes. HTTP/1.1 starts on the lean path
//! (`h1`); a request that path does not handle moves the connection to hyper
//! here, for good: keep-alive with *parking*, websocket upgrades handed to the
//! tunnel as the raw socket, graceful shutdown.
//!
//! Parking: hyper keeps a read and a write buffer (8 to 16 KiB each) for the
//! whole life of an HTTP/1.1 connection. A connection that has had no request
//! for one to two `PARK_CHECK` periods is ended at the HTTP layer without
//! closing the socket (hyper's `graceful_shutdown` while idle, then
//! `into_parts`): what is left is the socket and this task, a few hundred
//! bytes. The client's next byte starts a fresh HTTP/1.1 connection on the same
//! socket, with any bytes hyper had already read put back in front. nginx frees
//! the buffers of its idle keep-alive connections the same way. Idle connections
//! still close after the header read timeout, parked or not.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::body::ProxyBody;
use super::headers::ClientAddr;
use super::listener::Entry;
use super::{Proxy, ProxyOptions};

/// How often a connection checks whether it has been idle: it parks after one
/// to two periods without a request.
pub(crate) const PARK_CHECK: Duration = Duration::from_secs(1);

/// Smallest read buffer hyper accepts.
const MIN_HEADER_BYTES: usize = 8 * 1024;

/// Client connection settings, shared by every listener.
pub(crate) struct Protocols {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
}

impl Protocols {
    pub(crate) fn new(opts: &ProxyOptions) -> Protocols {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(opts.header_read_timeout)
            .max_buf_size(opts.max_header_bytes.max(MIN_HEADER_BYTES))
            .keep_alive(true);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(opts.max_header_bytes).unwrap_or(u32::MAX));
        Protocols { http1, http2 }
    }
}

/// Where a websocket tunnel waits for its client socket: set when the upstream
/// answered 101, filled once hyper has written that 101 and let go of the socket.
pub(crate) type UpgradeSlot = Mutex<Option<oneshot::Sender<ClientIo>>>;

/// What every request of one client connection shares. Cloned per request
/// without touching a counter another worker writes.
struct ConnCtx {
    proxy: Arc<Proxy>,
    client: ClientAddr,
    entry: Entry,
    /// Requests started on this connection.
    requests: AtomicU64,
    /// Responses not yet fully handed to hyper.
    active: AtomicUsize,
    upgrade: UpgradeSlot,
}

/// Open client connections by state, for `/metrics` and tests.
#[derive(Default)]
pub(crate) struct ConnCounts {
    pub(crate) open: AtomicUsize,
    pub(crate) parked: AtomicUsize,
    /// HTTP/1.1 connections the lean path handed to hyper, ever.
    pub(crate) handed_to_hyper: AtomicU64,
}

/// Serves one accepted connection until it closes, idles out, upgrades, or the
/// proxy shuts down (`shutdown`, this worker's child of the proxy's token).
pub(crate) async fn serve(
    proxy: Arc<Proxy>,
    stream: TcpStream,
    client: IpAddr,
    entry: Entry,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let _open = Gauge::enter(&proxy.conns.open);
    let client = ClientAddr::new(client);
    let handoff = super::h1::serve(&proxy, &client, &entry, stream, &shutdown).await;
    let ctx = |proxy| {
        Arc::new(ConnCtx {
            proxy,
            client,
            entry,
            requests: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            upgrade: Mutex::new(None),
        })
    };
    match handoff {
        Handoff::Closed => {}
        Handoff::Http1(io) => {
            proxy.conns.handed_to_hyper.fetch_add(1, Ordering::Relaxed);
            serve_http1(&ctx(Arc::clone(&proxy)), io, &shutdown).await;
        }
        Handoff::H2(io) => serve_h2(&ctx(Arc::clone(&proxy)), io, &shutdown).await,
    }
}

/// How a connection goes on after the lean path let go of it.
pub(crate) enum Handoff {
    /// It closed, idled out, or the proxy is stopping.
    Closed,
    /// A request the lean path does not handle: hyper's HTTP/1.1 from here on.
    Http1(ClientIo),
    /// It opened with the HTTP/2 preface (h2c with prior knowledge).
    H2(ClientIo),
}

type ServiceFuture = Pin<Box<dyn Future<Output = Result<Response<ConnBody>, Infallible>> + Send>>;

/// The per-request entry point: counts the request and routes it.
fn service(
    ctx: &Arc<ConnCtx>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<ConnBody>,
    Error = Infallible,
    Future = ServiceFuture,
> + Unpin
+ use<> {
    let ctx = Arc::clone(ctx);
    service_fn(move |req| -> ServiceFuture {
        ctx.requests.fetch_add(1, Ordering::Relaxed);
        let active = Active::enter(&ctx);
        Box::pin(async move {
            let ctx = &active.0;
            let response = ctx
                .proxy
                .handle(req, &ctx.client, &ctx.entry, &ctx.upgrade)
                .await;
            Ok(response.map(|body| ConnBody {
                body,
                _active: active,
            }))
        })
    })
}

/// HTTP/1.1: one hyper connection after another on the same socket, parked in
/// between while the client is idle.
async fn serve_http1(ctx: &Arc<ConnCtx>, mut io: ClientIo, shutdown: &CancellationToken) {
    let header_timeout = ctx.proxy.opts.header_read_timeout;
    // When the client was last seen starting a request (to within a check).
    let mut last_request = Instant::now();
    loop {
        let mut conn = Box::new(
            ctx.proxy
                .protocols
                .http1
                .serve_connection(TokioIo::new(io), service(ctx)),
        );
        let mut seen = ctx.requests.load(Ordering::Relaxed);
        let mut check = tokio::time::interval_at(Instant::now() + PARK_CHECK, PARK_CHECK);
        let mut parking = false;
        let mut closing = false;
        let ended = loop {
            tokio::select! {
                biased;
                ended = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break ended,
                _ = check.tick(), if !parking && !closing => {
                    let now = ctx.requests.load(Ordering::Relaxed);
                    if now != seen {
                        seen = now;
                        last_request = Instant::now();
                    } else if ctx.active.load(Ordering::Relaxed) == 0 {
                        // Idle for a whole period: end the HTTP layer, keep the socket.
                        parking = true;
                        Pin::new(&mut *conn).graceful_shutdown();
                    }
                }
                _ = shutdown.cancelled(), if !closing => {
                    closing = true;
                    Pin::new(&mut *conn).graceful_shutdown();
                }
            }
        };
        if let Err(error) = ended {
            tracing::debug!(%error, "client connection ended");
            return;
        }
        let parts = conn.into_parts();
        io = parts.io.into_inner().put_back(parts.read_buf);
        let upgrade = ctx.upgrade.lock().ok().and_then(|mut slot| slot.take());
        if let Some(tunnel) = upgrade {
            // hyper wrote the 101: the socket now belongs to the tunnel.
            let _ = tunnel.send(io);
            return;
        }
        if !parking || closing || shutdown.is_cancelled() {
            // The client closed, asked to close, or the proxy is stopping.
            return;
        }
        if io.has_prefix() {
            // A request had begun to arrive: serve it at once, no parking.
            continue;
        }
        let _parked = Gauge::enter(&ctx.proxy.conns.parked);
        tokio::select! {
            ready = io.stream.readable() => if ready.is_err() { return },
            _ = tokio::time::sleep_until(last_request + header_timeout) => return,
            _ = shutdown.cancelled() => return,
        }
    }
}

/// h2c: hyper's HTTP/2 connection, which multiplexes requests itself.
async fn serve_h2(ctx: &Arc<ConnCtx>, io: ClientIo, shutdown: &CancellationToken) {
    let header_timeout = ctx.proxy.opts.header_read_timeout;
    let conn = ctx
        .proxy
        .protocols
        .http2
        .serve_connection(TokioIo::new(io), service(ctx));
    tokio::pin!(conn);
    let first = tokio::time::sleep(header_timeout);
    tokio::pin!(first);
    let mut closing = false;
    loop {
        tokio::select! {
            biased;
            ended = &mut conn => {
                if let Err(error) = ended {
                    tracing::debug!(%error, "h2 client connection ended");
                }
                return;
            }
            _ = &mut first, if ctx.requests.load(Ordering::Relaxed) == 0 => {
                tracing::debug!(client = %ctx.client.ip(), "no request within the header timeout: closing");
                return;
            }
            _ = shutdown.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Counts a response until hyper has written (or dropped) its body.
struct Active(Arc<ConnCtx>);

impl Active {
    fn enter(ctx: &Arc<ConnCtx>) -> Active {
        ctx.active.fetch_add(1, Ordering::Relaxed);
        Active(Arc::clone(ctx))
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its connection counted as active until it ends.
pub(crate) struct ConnBody {
    body: ProxyBody,
    _active: Active,
}

impl Body for ConnBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A gauge held up while a guard lives.
pub(crate) struct Gauge<'a>(&'a AtomicUsize);

impl<'a> Gauge<'a> {
    pub(crate) fn enter(counter: &'a AtomicUsize) -> Gauge<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        Gauge(counter)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A client socket, with bytes already read from it (by hyper, before a park or
/// an upgrade) put back in front.
pub(crate) struct ClientIo {
    prefix: Bytes,
    stream: TcpStream,
}

impl ClientIo {
    pub(crate) fn new(prefix: Bytes, stream: TcpStream) -> ClientIo {
        ClientIo { prefix, stream }
    }

    fn has_prefix(&self) -> bool {
        !self.prefix.is_empty()
    }

    /// Puts `read` (bytes taken from this socket and not used) back in front.
    fn put_back(mut self, read: Bytes) -> ClientIo {
        if read.is_empty() {
            return self;
        }
        if self.prefix.is_empty() {
            self.prefix = read;
        } else {
            let mut joined = BytesMut::with_capacity(read.len() + self.prefix.len());
            joined.extend_from_slice(&read);
            joined.extend_from_slice(&self.prefix);
            self.prefix = joined.freeze();
        }
        self
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
