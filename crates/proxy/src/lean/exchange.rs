//! One request on the lean path, start to end, inside the client connection's
//! task: the body is read up to the body buffer before the request is routed
//! (`read_body`: a client that stalls holds no instance; bodyless requests
//! skip it), then the shared retry loop (`crate::retry`) picks an endpoint and
//! takes an idle upstream connection or opens one; here the rewritten head and
//! the body are written, the response head read, and the body relayed to the
//! client as it comes. The in-flight claim is held until the last
//! body byte is written; the upstream connection goes back to the idle stack
//! when the response ended cleanly.
//!
//! Stalls are cut (`crate::stall`): a client that sends none of its body for
//! the body timeout gets 408 (its error), an app that takes none of the
//! request for the send timeout a 504, and a client that reads none of its
//! response for the send timeout is closed, its upstream connection with it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::framing::{BadChunk, Framing};
use super::request::RequestHead;
use super::response::{self, Parsed, ResponseHead};
use crate::Proxy;
use crate::access::{Outcome, failures};
use crate::client::Stop;
use crate::error::{BadResponse, ProxyError};
use crate::pool::inflight::InFlight;
use crate::pool::{Endpoint, Pool};
use crate::retry::{self, Attempt, Failure};
use crate::routes::ListenerKind;
use crate::stall;
use crate::upstream::UpstreamCtx;
use crate::upstream::idle::IdleStack;
use crate::upstream::raw::{READ_SIZE, RawConn};

/// Read size while relaying a large body.
const BODY_READ_SIZE: usize = 64 * 1024;

/// Whether the client connection can take another request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    KeepAlive,
    Close,
    /// Not answered: the request (still all in the buffer) goes to hyper's
    /// path with the connection (an h2c service's).
    Hyper,
}

/// The client's side of an exchange: its socket, the bytes read from it after
/// the request head (body first), the buffer responses are built in, and the
/// proxy's stop (a response written after a shutdown began says close).
pub(crate) struct Client<'a> {
    pub(crate) stream: &'a mut TcpStream,
    pub(crate) buf: &'a mut BytesMut,
    pub(crate) out: &'a mut Vec<u8>,
    pub(crate) stop: Stop<'a>,
    /// What the answer was, for the access log (none: no access log).
    pub(crate) noted: Option<&'a mut Outcome>,
}

/// Why a request got no response head from upstream.
struct Failed {
    error: ProxyError,
    /// Nothing came back: the request may be sent again if replayable.
    before_response: bool,
}

impl Failed {
    fn early(error: ProxyError) -> Failed {
        Failed {
            error,
            before_response: true,
        }
    }

    fn late(error: ProxyError) -> Failed {
        Failed {
            error,
            before_response: false,
        }
    }
}

/// Forwards the request whose upstream head is `upstream_head` to `pool` and
/// relays the response to the client.
pub(crate) async fn forward(
    pool: Arc<Pool>,
    req: &RequestHead,
    upstream_head: &[u8],
    client: &mut Client<'_>,
) -> After {
    let mut guard = InFlight::start(pool);
    let started = client.noted.is_some().then(Instant::now);
    let ctx = &guard.pool().ctx;
    let send_timeout = ctx.send_timeout;
    let mut attempt = LeanAttempt {
        req,
        upstream_head,
        client,
        response_timeout: ctx.response_timeout,
        body_timeout: ctx.body_timeout,
        send_timeout,
    };
    let (index, mut conn, head) = match retry::send(&mut guard, &mut attempt).await {
        Ok(sent) => sent,
        Err(Exchange::Client(error)) => return refuse(guard, &error, req, client).await,
        Err(Exchange::Failed(failed)) => {
            let error = failed.error;
            let instance = guard
                .endpoint_index()
                .map(|index| guard.pool().endpoint(index).addr);
            failures::upstream_failed(&error, guard.pool(), instance);
            guard.failed();
            let page = guard.pool().error_page(error.status().as_u16());
            let pool = client.noted.is_some().then(|| Arc::clone(guard.pool()));
            drop(guard);
            let after = answer_locally(&error, page.as_deref(), req, client).await;
            if let Some(noted) = client.noted.as_deref_mut() {
                noted.pool = pool;
                noted.instance = instance;
            }
            return after;
        }
    };
    guard.answered(head.status >= 500);
    conn.buf.advance(head.len);
    if let (Some(noted), Some(started)) = (client.noted.as_deref_mut(), started) {
        *noted = Outcome {
            status: head.status,
            response_bytes: 0,
            pool: Some(Arc::clone(guard.pool())),
            instance: Some(guard.pool().endpoint(index).addr),
            upstream: Some(started.elapsed()),
        };
    }
    let mut sent = 0;
    let relayed = relay(&mut conn, head.framing, client, send_timeout, &mut sent).await;
    if let Some(noted) = client.noted.as_deref_mut() {
        noted.response_bytes = sent;
    }
    match relayed {
        Ok(()) => {
            if head.reusable && conn.buf.is_empty() {
                if conn.buf.capacity() > 2 * READ_SIZE {
                    // A large body grew it; an idle connection keeps a small one.
                    conn.buf = BytesMut::new();
                }
                guard.pool().check_in_raw(index, conn);
            }
            if head.close_client {
                After::Close
            } else {
                After::KeepAlive
            }
        }
        Err(error) => {
            tracing::debug!(%error, "response relay ended early");
            After::Close
        }
    }
}

/// Reads `req`'s body up to `limit` bytes into the client's buffer (behind
/// the head), waiting at most `timeout` for each read; the rest, if any,
/// streams once the request is sent. For requests with a body (the caller
/// skips bodyless ones).
pub(crate) async fn read_body(
    req: &RequestHead,
    limit: usize,
    timeout: Duration,
    client: &mut Client<'_>,
) -> Result<(), ProxyError> {
    let body = usize::try_from(req.content_length).unwrap_or(usize::MAX);
    let want = req.len.saturating_add(body.min(limit));
    while client.buf.len() < want {
        client.buf.reserve(want - client.buf.len());
        match tokio::time::timeout(timeout, client.stream.read_buf(client.buf)).await {
            Err(_) => return Err(ProxyError::BodyTimeout),
            Ok(Ok(0) | Err(_)) => return Err(ProxyError::ClientBody),
            Ok(Ok(_)) => {}
        }
    }
    Ok(())
}

/// The client broke or stalled its request body (`error`): its fault, not
/// the instance's. Counted as a client error of `guard`'s pool, answered (a
/// 400 or 408, if the client still reads: it may have only shut its sending
/// half), then the connection closes.
pub(crate) async fn refuse(
    guard: InFlight,
    error: &ProxyError,
    req: &RequestHead,
    client: &mut Client<'_>,
) -> After {
    tracing::debug!(%error, "request body not read");
    guard.client_error();
    let pool = client.noted.is_some().then(|| Arc::clone(guard.pool()));
    drop(guard);
    let after = answer_locally(error, None, req, client).await;
    if let Some(noted) = client.noted.as_deref_mut() {
        noted.pool = pool;
    }
    if after == After::Close && matches!(error, ProxyError::BodyTooLarge) {
        linger(client.stream).await;
    }
    After::Close
}

/// After a 413 to a client that may still be sending the body it announced
/// (at most the lean path's 64 KiB): stop writing and read what comes for
/// a moment, so that closing with unread bytes does not reset the
/// connection before the client has read the answer (nginx's lingering
/// close).
async fn linger(stream: &mut TcpStream) {
    const LINGER: Duration = Duration::from_secs(1);
    const MOST: usize = 128 * 1024;
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut read = 0;
    let deadline = Instant::now() + LINGER;
    while read < MOST {
        match tokio::time::timeout_at(deadline, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => read += n,
            _ => return,
        }
    }
}

/// Whether `req`'s `Content-Length` is over its service's `max_body` (the
/// Host is still in the client's buffer): then it gets 413 unread, before
/// anything is sent upstream. For requests with a body.
pub(crate) fn too_large(
    proxy: &Proxy,
    listener: &ListenerKind,
    req: &RequestHead,
    client: &Client<'_>,
) -> bool {
    let host = &client.buf[req.host.clone()];
    proxy
        .policy_for(listener, || std::str::from_utf8(host).ok())
        .and_then(|policy| policy.max_body)
        .is_some_and(|max| req.content_length > max)
}

/// Answers `req` with the proxy's own response for `error` (no route, no
/// backend, upstream failed): the service's error `page` when it has one.
pub(crate) async fn answer_locally(
    error: &ProxyError,
    page: Option<&[u8]>,
    req: &RequestHead,
    client: &mut Client<'_>,
) -> After {
    // A body the client may still be sending would be read as the next
    // request: close after this answer.
    let close = req.close || req.content_length > 0 || client.stop.closing();
    response::local(error, page, req.head_method, close, client.out);
    if let Some(noted) = client.noted.as_deref_mut() {
        *noted = Outcome::local(error, None, page);
        if req.head_method {
            noted.response_bytes = 0;
        }
    }
    match client.stream.write_all(client.out).await {
        Ok(()) if !close => After::KeepAlive,
        _ => After::Close,
    }
}

/// Answers `req` with a 308 to `location` (a TLS service's plain request).
pub(crate) async fn redirect(location: &[u8], req: &RequestHead, client: &mut Client<'_>) -> After {
    let close = req.close || req.content_length > 0 || client.stop.closing();
    response::redirect(location, close, client.out);
    if let Some(noted) = client.noted.as_deref_mut() {
        noted.status = 308;
    }
    send_own(close, client).await
}

/// 200 with `answer` (an ACME key authorization) as text/plain.
pub(crate) async fn challenge(answer: &[u8], req: &RequestHead, client: &mut Client<'_>) -> After {
    let close = req.close || req.content_length > 0 || client.stop.closing();
    response::plain(
        http::StatusCode::OK,
        answer,
        req.head_method,
        close,
        client.out,
    );
    if let Some(noted) = client.noted.as_deref_mut() {
        noted.status = 200;
        noted.response_bytes = if req.head_method {
            0
        } else {
            answer.len() as u64
        };
    }
    send_own(close, client).await
}

/// Writes a response the proxy made itself (in `client.out`).
async fn send_own(close: bool, client: &mut Client<'_>) -> After {
    match client.stream.write_all(client.out).await {
        Ok(()) if !close => After::KeepAlive,
        _ => After::Close,
    }
}

/// Why an exchange ended without a response head.
enum Exchange {
    Failed(Failed),
    /// The client closed (or broke) its connection before the whole body of
    /// its `Content-Length` arrived (`ClientBody`), or stalled sending it
    /// (`BodyTimeout`).
    Client(ProxyError),
}

impl From<ProxyError> for Exchange {
    fn from(error: ProxyError) -> Exchange {
        Exchange::Failed(Failed::early(error))
    }
}

/// One request on the lean path's upstream connections.
struct LeanAttempt<'r, 'c, 'b> {
    req: &'r RequestHead,
    upstream_head: &'r [u8],
    client: &'c mut Client<'b>,
    /// How long a sent request waits for its response head.
    response_timeout: Duration,
    /// How long the streamed rest of a body may wait for the client.
    body_timeout: Duration,
    /// How long a write may wait for the upstream to take it.
    send_timeout: Duration,
}

impl Attempt for LeanAttempt<'_, '_, '_> {
    type Conn = RawConn;
    type Answer = ResponseHead;
    type Error = Exchange;

    fn idle(endpoint: &Endpoint) -> &IdleStack<RawConn> {
        &endpoint.raw_idle
    }

    async fn connect(ctx: &UpstreamCtx, addr: SocketAddr) -> Result<RawConn, ProxyError> {
        RawConn::connect(addr, ctx.connect_timeout).await
    }

    /// Only replayable requests are sent again, and those have no body.
    async fn send(
        &mut self,
        conn: &mut RawConn,
        may_resend: bool,
    ) -> Result<ResponseHead, Failure<Exchange>> {
        let sent = exchange_head(conn, self).await;
        match sent {
            Ok(head) => Ok(head),
            Err(Exchange::Failed(failed))
                if may_resend && self.req.replayable && failed.before_response =>
            {
                Err(Failure::Resend(failed.error))
            }
            Err(other) => Err(Failure::Fatal(other)),
        }
    }
}

/// What a failed write to the upstream was: the app not taking the request
/// within the send timeout (504), or a broken connection (502).
fn write_error(error: std::io::Error) -> ProxyError {
    if stall::is_send_timeout(&error) {
        ProxyError::SendTimeout
    } else {
        ProxyError::UpstreamIo(error)
    }
}

/// Writes the head and body of `attempt`'s request on `conn` and reads until
/// a final response head, for at most the response timeout after the first
/// wait for it.
async fn exchange_head(
    conn: &mut RawConn,
    attempt: &mut LeanAttempt<'_, '_, '_>,
) -> Result<ResponseHead, Exchange> {
    let timeout = attempt.response_timeout;
    let (req, client) = (attempt.req, &mut *attempt.client);
    let send_timeout = attempt.send_timeout;
    let early = |e| Exchange::Failed(Failed::early(write_error(e)));
    let in_buf = part(req.content_length, client.buf);
    if in_buf == 0 {
        let head = attempt.upstream_head;
        stall::write_all(&conn.stream, head, send_timeout)
            .await
            .map_err(early)?;
    } else {
        // Head and the body received so far in one write.
        client.out.clear();
        client.out.extend_from_slice(attempt.upstream_head);
        client.out.extend_from_slice(&client.buf[..in_buf]);
        client.buf.advance(in_buf);
        stall::write_all(&conn.stream, client.out, send_timeout)
            .await
            .map_err(early)?;
    }
    let mut left = req.content_length - in_buf as u64;
    while left > 0 {
        client.buf.reserve(READ_SIZE);
        let read = client.stream.read_buf(client.buf);
        match tokio::time::timeout(attempt.body_timeout, read).await {
            Err(_) => return Err(Exchange::Client(ProxyError::BodyTimeout)),
            Ok(Ok(0) | Err(_)) => return Err(Exchange::Client(ProxyError::ClientBody)),
            Ok(Ok(_)) => {}
        }
        let take = part(left, client.buf);
        stall::write_all(&conn.stream, &client.buf[..take], send_timeout)
            .await
            .map_err(|e| Exchange::Failed(Failed::late(write_error(e))))?;
        client.buf.advance(take);
        left -= take as u64;
    }
    let mut answered = false;
    // Armed when the first read has to wait: an answer already in costs no timer.
    let mut deadline = None;
    loop {
        if !conn.buf.is_empty() {
            // Read at the last moment: a response written after shutdown
            // fired tells the client to close.
            let close = req.close || client.stop.closing();
            let bad = |e: BadResponse| Exchange::Failed(Failed::late(ProxyError::BadResponse(e)));
            match response::parse(&conn.buf, req.head_method, close, client.out).map_err(bad)? {
                Parsed::Final(head) => return Ok(head),
                Parsed::Interim(len) => {
                    conn.buf.advance(len);
                    continue;
                }
                Parsed::Partial => {}
            }
        }
        conn.buf.reserve(READ_SIZE);
        let failed = |error| {
            Exchange::Failed(Failed {
                error,
                before_response: !answered,
            })
        };
        let read = match conn.stream.try_read_buf(&mut conn.buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let at = *deadline.get_or_insert_with(|| Instant::now() + timeout);
                match tokio::time::timeout_at(at, conn.stream.read_buf(&mut conn.buf)).await {
                    Ok(read) => read,
                    // Not resent: the app may be working on it.
                    Err(_) => {
                        return Err(Exchange::Failed(Failed::late(ProxyError::ResponseTimeout)));
                    }
                }
            }
            read => read,
        };
        match read {
            Ok(0) => return Err(failed(ProxyError::UpstreamClosed)),
            Ok(_) => answered = true,
            Err(e) => return Err(failed(ProxyError::UpstreamIo(e))),
        }
    }
}

/// Why relaying a response body stopped early.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("upstream closed inside the body")]
    UpstreamClosed,
    #[error(transparent)]
    Chunk(#[from] BadChunk),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Writes the client head in the client's `out` and the body after it: the
/// part already read goes out in the same write as the head, the rest as it
/// arrives (a chunked piece that must be normalised goes out as rewritten in
/// `out`). A client that takes none of a write for `send_timeout` is cut.
async fn relay(
    conn: &mut RawConn,
    mut framing: Framing,
    client: &mut Client<'_>,
    send_timeout: Duration,
    sent: &mut u64,
) -> Result<(), RelayError> {
    let out = &mut *client.out;
    let stream = &*client.stream;
    let head_len = out.len();
    let first = framing.consume(&conn.buf, out)?;
    if !first.rewritten {
        out.extend_from_slice(&conn.buf[..first.taken]);
    }
    conn.buf.advance(first.taken);
    stall::write_all(stream, out, send_timeout).await?;
    *sent = (out.len() - head_len) as u64;
    let mut done = first.done;
    while !done {
        if !read_more(conn, framing.left()).await? {
            if matches!(framing, Framing::UntilClose) {
                return Ok(());
            }
            return Err(RelayError::UpstreamClosed);
        }
        out.clear();
        let piece = framing.consume(&conn.buf, out)?;
        let bytes = if piece.rewritten {
            &out[..]
        } else {
            &conn.buf[..piece.taken]
        };
        stall::write_all(stream, bytes, send_timeout).await?;
        *sent += bytes.len() as u64;
        conn.buf.advance(piece.taken);
        done = piece.done;
    }
    Ok(())
}

/// How much of `buf` belongs to a request body with `left` bytes to go.
fn part(left: u64, buf: &BytesMut) -> usize {
    usize::try_from(left).unwrap_or(usize::MAX).min(buf.len())
}

/// Reads the next bytes of a body with `left` bytes to go (None: unknown);
/// false when the upstream closed.
async fn read_more(conn: &mut RawConn, left: Option<u64>) -> Result<bool, RelayError> {
    let size = match left {
        Some(left) if left <= READ_SIZE as u64 => READ_SIZE,
        _ => BODY_READ_SIZE,
    };
    conn.buf.reserve(size);
    Ok(conn.stream.read_buf(&mut conn.buf).await? > 0)
}
