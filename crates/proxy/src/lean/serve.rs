//! An HTTP/1.1 client connection on the lean path: read a request head, route
//! it, forward it, and again, until the client closes, idles out, the proxy
//! shuts down, or a request comes that hyper must serve (then the connection,
//! with the bytes already read, goes to hyper for the rest of its life).
//!
//! Between requests the connection waits for readability holding its buffers;
//! after one `PARK_CHECK` with nothing it drops them and counts as parked, as
//! hyper's path does. The client must complete each head within the header
//! read timeout, counted from the end of the previous response.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use nix::errno::Errno;
use nix::sys::socket::MsgFlags;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::buffers::{ConnBuffers, HEAD_READ_SIZE};
use super::exchange::{self, After, Client};
use super::request::{self, Parsed, RequestHead};
use crate::Proxy;
use crate::access::{Line, Outcome, request_id};
use crate::client::{
    ClientAddr, ClientIo, Gauge, Handoff, MIN_HEADER_BYTES, PARK_CHECK, Stop, Stopping,
};
use crate::error::ProxyError;
use crate::pool::inflight::InFlight;
use crate::routes::{CHALLENGE_GET, ListenerKind, https};

/// The HTTP/2 connection preface (RFC 9113 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serves `stream` until it closes, or must go to hyper (the socket with the
/// bytes read from it put back in front): h2c when it opens with the HTTP/2
/// preface, HTTP/1.1 for a request this path does not handle. During a
/// hand-over it goes to the successor at the first request boundary with
/// nothing read (a head half read is read and served first).
pub(crate) async fn serve(
    proxy: &Arc<Proxy>,
    client: &ClientAddr,
    listener: &ListenerKind,
    mut stream: TcpStream,
    stop: Stop<'_>,
) -> Handoff {
    let header_timeout = proxy.opts.header_read_timeout;
    let max_head = proxy.opts.max_header_bytes.max(MIN_HEADER_BYTES);
    let send_timeout = proxy.opts.send_timeout;
    let underscores = proxy.opts.underscores_in_headers;
    let mut bufs = ConnBuffers::take();
    let timer = tokio::time::sleep(header_timeout);
    tokio::pin!(timer);
    let cancelled = stop.token.cancelled();
    tokio::pin!(cancelled);
    // The stop token fired (it cannot be polled again).
    let mut stopped = false;
    let mut first = true;
    // Nothing read from this socket yet: see `read_now`.
    let mut fresh = true;
    loop {
        let now = Instant::now();
        let deadline = now + header_timeout;
        let park_at = (now + PARK_CHECK).min(deadline);
        let mut parked = None;
        // Try a read before waiting: a pipelined or quick client has sent already.
        let mut readable = true;
        let req = loop {
            let buf = &mut bufs.read;
            if first && !buf.is_empty() {
                let n = buf.len().min(H2_PREFACE.len());
                if buf[..n] == H2_PREFACE[..n] {
                    if n == H2_PREFACE.len() {
                        return Handoff::H2(ClientIo::new(
                            std::mem::take(buf).freeze(),
                            stream,
                            send_timeout,
                        ));
                    }
                    // Maybe the preface, arriving in pieces: read on.
                } else {
                    first = false;
                }
            }
            if !first && !buf.is_empty() {
                match request::parse(buf, client, &mut bufs.head, underscores) {
                    Parsed::Ready(req) => break req,
                    Parsed::Partial if buf.len() < max_head => {}
                    // hyper answers what it must (400, 431) or serves it.
                    Parsed::Partial | Parsed::Fallback => {
                        return Handoff::Http1(ClientIo::new(
                            std::mem::take(buf).freeze(),
                            stream,
                            send_timeout,
                        ));
                    }
                }
            }
            if readable {
                if !bufs.is_held() {
                    // Woken from parking: buffers again.
                    bufs = ConnBuffers::take();
                }
                let buf = &mut bufs.read;
                let read = if fresh {
                    fresh = false;
                    read_now(&stream, buf)
                } else {
                    buf.reserve(HEAD_READ_SIZE);
                    stream.try_read_buf(buf)
                };
                match read {
                    Ok(0) => return Handoff::Closed,
                    Ok(_) => continue,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return Handoff::Closed,
                }
            }
            let wake = if bufs.read.is_empty() && parked.is_none() {
                park_at
            } else {
                deadline
            };
            timer.as_mut().reset(wake);
            tokio::select! {
                biased;
                ready = stream.readable() => {
                    if ready.is_err() {
                        return Handoff::Closed;
                    }
                    readable = true;
                }
                () = &mut timer => {
                    if Instant::now() >= deadline {
                        // Idle (or a head too slow) for the whole timeout.
                        return Handoff::Closed;
                    }
                    // Idle for a whole check: keep the socket, give the
                    // buffers back to the worker.
                    bufs.release();
                    parked = Some(Gauge::enter(&proxy.conns.parked));
                    readable = false;
                }
                () = &mut cancelled, if !stopped => {
                    stopped = true;
                    if !stop.handing_over() {
                        return Handoff::Closed;
                    }
                    if bufs.read.is_empty() {
                        return Handoff::Successor(stream);
                    }
                    // A head begun: read it and serve it first.
                }
            }
        };
        drop(parked);
        let after = match proxy.opts.access_log.as_deref() {
            None => {
                let mut conn = Client {
                    stream: &mut stream,
                    buf: &mut bufs.read,
                    out: &mut bufs.out,
                    stop,
                    noted: None,
                };
                answer(proxy, listener, &req, &bufs.head, &mut conn).await
            }
            Some(log) => {
                let mut req = req;
                let started = Instant::now();
                let host = request::host_in_upstream(&bufs.head, &req);
                if req.request_id.is_none() {
                    let id = request_id::generate();
                    req.request_id = Some(request::add_request_id(&mut bufs.head, &id));
                }
                let mut noted = Outcome::default();
                let mut conn = Client {
                    stream: &mut stream,
                    buf: &mut bufs.read,
                    out: &mut bufs.out,
                    stop,
                    noted: Some(&mut noted),
                };
                let after = answer(proxy, listener, &req, &bufs.head, &mut conn).await;
                let head = &bufs.head;
                let method_end = head.iter().position(|&b| b == b' ').unwrap_or(0);
                log.record(&Line {
                    pool: noted.pool.as_deref().map(|pool| &pool.label),
                    instance: noted.instance,
                    client: client.text(),
                    method: &head[..method_end],
                    host: &head[host],
                    path: request::target(head),
                    protocol: "HTTP/1.1",
                    status: noted.status,
                    request_bytes: req.content_length,
                    response_bytes: noted.response_bytes,
                    total: started.elapsed(),
                    upstream: noted.upstream,
                    request_id: req.request_id.clone().map_or(&[][..], |at| &head[at]),
                });
                after
            }
        };
        if after == After::Close {
            return Handoff::Closed;
        }
        if after == After::Hyper {
            let read = std::mem::take(&mut bufs.read).freeze();
            return Handoff::Http1(ClientIo::new(read, stream, send_timeout));
        }
        // One look at the stop per request (it takes a lock). Bytes already
        // read (a pipelined request) are served here before a hand-over.
        match stop.now() {
            Stopping::No => {}
            Stopping::Closing => return Handoff::Closed,
            Stopping::HandingOver if bufs.read.is_empty() => return Handoff::Successor(stream),
            Stopping::HandingOver => {}
        }
    }
}

/// Reads what the kernel already holds for a just-accepted socket, with a
/// plain `recv`. The listeners defer accept until a connection's first bytes
/// are in (`listener`'s deferred accept), so they are there; but tokio has seen no
/// readiness event for the new socket yet, and its `try_read` would answer
/// WouldBlock without asking the kernel, costing a trip round the event loop
/// per connection before the request is even read (nginx reads at once too).
fn read_now(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let start = buf.len();
    buf.resize(start + HEAD_READ_SIZE, 0);
    let read =
        match nix::sys::socket::recv(stream.as_raw_fd(), &mut buf[start..], MsgFlags::empty()) {
            Ok(n) => Ok(n),
            // Interrupted before reading anything: wait for readiness as usual
            // (registering the socket queued an event for bytes already in).
            Err(Errno::EINTR) => Err(io::ErrorKind::WouldBlock.into()),
            Err(errno) => Err(io::Error::from(errno)),
        };
    buf.truncate(start + read.as_ref().copied().unwrap_or(0));
    read
}

/// Reads the request's body up to the body buffer, then routes the request
/// and forwards it, or answers it with the proxy's own error.
async fn answer(
    proxy: &Proxy,
    listener: &ListenerKind,
    req: &RequestHead,
    upstream_head: &[u8],
    client: &mut Client<'_>,
) -> After {
    let opts = &proxy.opts;
    let body = if req.content_length == 0 {
        // Bodyless (the keep-alive GET): nothing to wait for.
        Ok(())
    } else if exchange::too_large(proxy, listener, req, client) {
        Err(ProxyError::BodyTooLarge)
    } else {
        exchange::read_body(req, opts.body_buffer, opts.body_timeout, client).await
    };
    // An ACME challenge being validated is answered here, whatever the Host.
    if upstream_head.starts_with(CHALLENGE_GET)
        && let Some(answer) = proxy.challenge_answer(listener, request::target(upstream_head))
    {
        client.buf.advance(req.len);
        return exchange::challenge(&answer, req, client).await;
    }
    let host = &client.buf[req.host.clone()];
    let mut pool = proxy.pool_for(listener, || std::str::from_utf8(host).ok());
    if let Err(ProxyError::HttpsRedirect(port)) = pool {
        // A TLS service's: to https, but for ACME challenges.
        let target = request::target(upstream_head);
        if https::is_acme_challenge(target) {
            pool = proxy.pool_for(&ListenerKind::Tls, || std::str::from_utf8(host).ok());
        } else {
            let location = https::location(host, port, target);
            client.buf.advance(req.len);
            return exchange::redirect(&location, req, client).await;
        }
    }
    if let Err(ProxyError::Paused(_)) = pool {
        pool = proxy
            .after_pause(pool, listener, || std::str::from_utf8(host).ok())
            .await;
    }
    if pool.as_ref().is_ok_and(|pool| pool.h2c) {
        // HTTP/2 to the app is hyper's: it translates this HTTP/1.1 request.
        return After::Hyper;
    }
    let page = match &pool {
        Err(error) => proxy.page_for(listener, error, || std::str::from_utf8(host).ok()),
        Ok(_) => None,
    };
    client.buf.advance(req.len);
    match (pool, body) {
        (Ok(pool), Ok(())) => exchange::forward(pool, req, upstream_head, client).await,
        (Ok(pool), Err(error)) => {
            exchange::refuse(InFlight::start(pool), &error, req, client).await
        }
        (Err(error), _) => exchange::answer_locally(&error, page.as_deref(), req, client).await,
    }
}
