//! A client connection on hyper's path, once the lean path handed it over: h2c
//! (prior knowledge), or HTTP/1.1 for the rest of the connection's life, with
//! keep-alive *parking*, websocket upgrades handed to the tunnel as the raw
//! socket, and graceful shutdown.
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
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::body::{BodyError, ProxyBody};
use super::h2::{self, Cancels};
use super::logged;
use crate::client::{
    ClientAddr, ClientIo, ClientStream, Gauge, Handoff, MIN_HEADER_BYTES, PARK_CHECK, Stop,
};
use crate::routes::ListenerKind;
use crate::{Proxy, ProxyOptions};

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
            // The limit is in bytes, not hyper's 100 lines (`max_lines`).
            .max_headers(crate::upstream::max_lines(
                opts.max_header_bytes.max(MIN_HEADER_BYTES),
            ))
            .keep_alive(true);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        h2::configure(&mut http2, opts);
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
    listener: ListenerKind,
    /// Requests started on this connection.
    requests: AtomicU64,
    /// Responses not yet fully handed to hyper.
    active: AtomicUsize,
    /// Requests the client gave up before their response ended (h2c: a
    /// RST_STREAM), for the rapid-reset limit.
    cancels: Cancels,
    upgrade: UpgradeSlot,
    /// An HTTP/1.1 connection over TLS: it cannot move to a successor, so
    /// during a hand-over each response says `Connection: close`.
    close_on_handover: bool,
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
    service_fn(move |mut req: Request<Incoming>| -> ServiceFuture {
        ctx.requests.fetch_add(1, Ordering::Relaxed);
        let active = Active::enter(&ctx);
        Box::pin(async move {
            let ctx = &active.ctx;
            let mut logged = match &ctx.proxy.opts.access_log {
                None => {
                    logged::screen_request_id(&mut req);
                    None
                }
                Some(log) => Some(logged::Pending::start(log, &mut req, &ctx.client)),
            };
            let mut response = ctx
                .proxy
                .handle(req, &ctx.client, &ctx.listener, &ctx.upgrade)
                .await;
            if ctx.close_on_handover
                && ctx.proxy.handing_over.load(Ordering::Acquire)
                && response.status() != http::StatusCode::SWITCHING_PROTOCOLS
            {
                // hyper closes the connection once this response is written.
                let close = http::HeaderValue::from_static("close");
                response
                    .headers_mut()
                    .insert(http::header::CONNECTION, close);
            }
            if let Some(logged) = &mut logged {
                logged.answered(&mut response);
            }
            Ok(response.map(|body| ConnBody {
                body,
                active,
                logged,
            }))
        })
    })
}

impl ConnCtx {
    fn new(
        proxy: Arc<Proxy>,
        client: ClientAddr,
        listener: ListenerKind,
        close_on_handover: bool,
    ) -> Arc<ConnCtx> {
        let cancels = Cancels::new(&proxy.opts);
        Arc::new(ConnCtx {
            proxy,
            client,
            listener,
            requests: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            cancels,
            upgrade: Mutex::new(None),
            close_on_handover,
        })
    }
}

/// HTTP/1.1: one hyper connection after another on the same socket, parked in
/// between while the client is idle. During a hand-over the connection parks
/// as soon as no response is in progress, and its socket goes to the
/// successor (`Handoff::Successor`) unless a request had begun to arrive.
/// A TLS connection cannot move (its session keys live in this process):
/// during a hand-over it is served here as before, parked when idle, and
/// each response says `Connection: close`, so it ends after its next
/// response, or at the idle timeout.
pub(crate) async fn serve_http1(
    proxy: Arc<Proxy>,
    client: ClientAddr,
    listener: ListenerKind,
    mut io: ClientIo,
    stop: Stop<'_>,
) -> Handoff {
    let tls = matches!(io.stream(), ClientStream::Tls(_));
    let ctx = &ConnCtx::new(proxy, client, listener, tls);
    let header_timeout = ctx.proxy.opts.header_read_timeout;
    // When the client was last seen starting a request (to within a check).
    let mut last_request = Instant::now();
    // A TLS connection during a hand-over: it stays, and pays the stop no
    // more attention (`close_on_handover` ends it).
    let stays = |stop: &Stop<'_>| tls && stop.handing_over();
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
        let mut handing = !tls && stop.handing_over();
        let ended = loop {
            tokio::select! {
                biased;
                ended = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break ended,
                _ = check.tick(), if !parking && !closing => {
                    let now = ctx.requests.load(Ordering::Relaxed);
                    let idle = now == seen;
                    if !idle {
                        seen = now;
                        last_request = Instant::now();
                    }
                    if (idle || handing) && ctx.active.load(Ordering::Relaxed) == 0 {
                        // Idle for a whole period (or handing over): end the
                        // HTTP layer, keep the socket.
                        parking = true;
                        Pin::new(&mut *conn).graceful_shutdown();
                    }
                }
                _ = stop.token.cancelled(), if !closing && !handing && !stays(&stop) => {
                    if stop.handing_over() {
                        // A TLS connection stays (`stays`); a plain one moves.
                        if !tls {
                            handing = true;
                            if ctx.active.load(Ordering::Relaxed) == 0 {
                                parking = true;
                                Pin::new(&mut *conn).graceful_shutdown();
                            }
                        }
                    } else {
                        closing = true;
                        Pin::new(&mut *conn).graceful_shutdown();
                    }
                }
            }
        };
        if let Err(error) = ended {
            if error.is_parse() {
                // hyper answered 400 or 431: the client's error.
                let refused = &ctx.proxy.conns.malformed_requests;
                refused.fetch_add(1, Ordering::Relaxed);
            }
            tracing::debug!(%error, "client connection ended");
            return Handoff::Closed;
        }
        let parts = conn.into_parts();
        io = parts.io.into_inner().put_back(parts.read_buf);
        let upgrade = ctx.upgrade.lock().ok().and_then(|mut slot| slot.take());
        if let Some(tunnel) = upgrade {
            // hyper wrote the 101: the socket now belongs to the tunnel.
            let _ = tunnel.send(io);
            return Handoff::Closed;
        }
        if !parking || closing || stop.closing() {
            // The client closed, asked to close, or the proxy is stopping.
            return Handoff::Closed;
        }
        if io.has_prefix() || io.stream_mut().has_buffered() {
            // A request had begun to arrive: serve it at once, no parking.
            continue;
        }
        if stop.handing_over() && !tls {
            return to_successor(io.into_stream());
        }
        let _parked = Gauge::enter(&ctx.proxy.conns.parked);
        tokio::select! {
            ready = io.stream().tcp().readable() => if ready.is_err() { return Handoff::Closed },
            _ = tokio::time::sleep_until(last_request + header_timeout) => return Handoff::Closed,
            _ = stop.token.cancelled(), if !stays(&stop) => {
                if !stop.handing_over() {
                    return Handoff::Closed;
                }
                if tls {
                    // It stays: wait for its next request as before.
                    continue;
                }
                return to_successor(io.into_stream());
            }
        }
    }
}

/// An idle connection during a hand-over: a plain one goes to the successor
/// (a TLS one never gets here, but would close).
fn to_successor(stream: ClientStream) -> Handoff {
    match stream {
        ClientStream::Plain(stream) => Handoff::Successor(stream),
        ClientStream::Tls(_) => Handoff::Closed,
    }
}

/// h2c: hyper's HTTP/2 connection, which multiplexes requests itself. It
/// lives as long as it has streams, however long they take. With no stream
/// in progress for the idle timeout (the header read timeout, which bounds
/// HTTP/1.1 keep-alive idle too), and on a stop (shutdown or hand-over
/// alike), it ends gracefully: GOAWAY, streams in progress finish, and the
/// client opens its next connection anew. A client that has no stream but
/// does not let the connection end (it never answers the GOAWAY's PING) is
/// closed one more idle timeout later.
pub(crate) async fn serve_h2(
    proxy: Arc<Proxy>,
    client: ClientAddr,
    listener: ListenerKind,
    io: ClientIo,
    stop: Stop<'_>,
) {
    let ctx = &ConnCtx::new(proxy, client, listener, false);
    let idle_timeout = ctx.proxy.opts.header_read_timeout;
    let conn = ctx
        .proxy
        .protocols
        .http2
        .serve_connection(TokioIo::new(io), service(ctx));
    tokio::pin!(conn);
    // Idleness is sampled once a `PARK_CHECK`, as on the HTTP/1.1 path: a
    // stream seen in progress, or started since the last check, is activity.
    let mut check = tokio::time::interval_at(Instant::now() + PARK_CHECK, PARK_CHECK);
    let mut seen = 0;
    let mut last_busy = Instant::now();
    // Since when the connection has been ending (GOAWAY sent).
    let mut ending: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            ended = &mut conn => {
                if let Err(error) = ended {
                    tracing::debug!(%error, "h2 client connection ended");
                }
                return;
            }
            _ = stop.token.cancelled(), if ending.is_none() => {
                ending = Some(Instant::now());
                conn.as_mut().graceful_shutdown();
            }
            () = ctx.cancels.exceeded() => {
                tracing::warn!(
                    client = %ctx.client.ip(),
                    limit = ctx.cancels.limit(),
                    "h2 client cancelled more streams in a second than allowed (rapid reset): closing"
                );
                return;
            }
            _ = check.tick() => {
                ctx.cancels.new_period();
                let started = ctx.requests.load(Ordering::Relaxed);
                let busy = ctx.active.load(Ordering::Relaxed) > 0;
                if busy || started != seen {
                    seen = started;
                    last_busy = Instant::now();
                    continue;
                }
                match ending {
                    None if last_busy.elapsed() >= idle_timeout => {
                        tracing::debug!(client = %ctx.client.ip(), "h2 connection idle: GOAWAY");
                        ending = Some(Instant::now());
                        conn.as_mut().graceful_shutdown();
                    }
                    Some(since) if since.elapsed() >= idle_timeout => {
                        tracing::debug!(client = %ctx.client.ip(), "h2 connection not ending: closing");
                        return;
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Counts a response until hyper has written (or dropped) its body; dropped
/// before the body's end, it counts a cancellation.
struct Active {
    ctx: Arc<ConnCtx>,
    /// The body reached its end or failed upstream: not a cancellation (set
    /// from `is_end_stream` too, hence atomic).
    ended: AtomicBool,
}

impl Active {
    fn enter(ctx: &Arc<ConnCtx>) -> Active {
        ctx.active.fetch_add(1, Ordering::Relaxed);
        Active {
            ctx: Arc::clone(ctx),
            ended: AtomicBool::new(false),
        }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.ctx.active.fetch_sub(1, Ordering::Relaxed);
        if !*self.ended.get_mut() {
            self.ctx.cancels.count();
        }
    }
}

/// A response body that keeps its connection counted as active until it ends.
pub(crate) struct ConnBody {
    body: ProxyBody,
    active: Active,
    /// The request's access log line, written when this is dropped.
    logged: Option<Box<logged::Pending>>,
}

impl Body for ConnBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let (Some(logged), Poll::Ready(Some(Ok(frame)))) = (&mut this.logged, &frame)
            && let Some(data) = frame.data_ref()
        {
            logged.sent += data.len() as u64;
        }
        // The end, or the upstream's failure (not the client's doing).
        if matches!(frame, Poll::Ready(None | Some(Err(_)))) || this.body.is_end_stream() {
            *this.active.ended.get_mut() = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        let end = self.body.is_end_stream();
        if end {
            self.active.ended.store(true, Ordering::Relaxed);
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
