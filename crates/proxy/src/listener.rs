//! Listeners: binding, the accept loops, and one accepted connection's life
//! on the worker that accepted it ([`serve`]).
//!
//! Every connection starts on the lean path (`crate::lean`). When it meets
//! something that path does not handle (h2c, an upgrade, a chunked body...),
//! it hands the socket over, with the bytes already read put back in front,
//! and hyper's path (`crate::hyper`) serves it for the rest of its life.
//! A connection belongs to a [`ListenerKind`]: the production listener
//! routes by Host, a preview listener serves one service's preview pool. The
//! TLS listener's connections are served by `serve_tls` instead: the
//! handshake (settings and certificates from `crate::tls`), then hyper's path.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::Proxy;
use crate::accept::AcceptPause;
use crate::client::{ClientAddr, ClientIo, ClientStream, Gauge, Handoff, Stop};
use crate::error::RouteError;
use crate::routes::{ListenerKind, ListenerName};

/// The listening sockets of one listener, as handed to a successor.
#[derive(Debug)]
pub struct Listening {
    pub name: ListenerName,
    pub addr: SocketAddr,
    /// One per worker of the proxy that bound them (SO_REUSEPORT: each has
    /// its own accept queue, so every one must be taken over).
    pub sockets: Vec<OwnedFd>,
}

/// A client connection handed to the successor, idle and with nothing read
/// from it.
#[derive(Debug)]
pub struct HandedConn {
    pub listener: ListenerName,
    pub stream: std::net::TcpStream,
    pub client: IpAddr,
}

/// Listening sockets for one address: one per worker, all on the same port.
pub(crate) struct Bound {
    /// The address they listen on (the port the kernel picked, for port 0).
    pub(crate) addr: SocketAddr,
    sockets: Vec<std::net::TcpListener>,
}

/// Listen queue length of each socket (the kernel caps it at somaxconn).
const BACKLOG: u32 = 4096;

/// How long the kernel holds a connection that has sent nothing before
/// handing it to `accept` anyway (TCP_DEFER_ACCEPT, in seconds; nginx's
/// `deferred` uses the same option).
#[cfg(target_os = "linux")]
const DEFER_ACCEPT_SECS: u32 = 1;

#[cfg(target_os = "linux")]
mod defer {
    // The macro names `libc` itself: nix's re-export serves.
    use nix::libc;
    use nix::{getsockopt_impl, setsockopt_impl, sockopt_impl};
    sockopt_impl!(
        /// TCP_DEFER_ACCEPT: `accept` returns a connection only once its first
        /// bytes have arrived (or after this many seconds).
        TcpDeferAccept,
        Both,
        libc::IPPROTO_TCP,
        libc::TCP_DEFER_ACCEPT,
        u32
    );
}

/// Asks the kernel to hand over connections only once their first bytes (the
/// request head, a TLS hello, the h2 preface) are in: HTTP clients speak
/// first, so accepting earlier only costs a wake-up per connection to find
/// nothing to read (with a new connection per request this was teal's p99 gap
/// to nginx: BENCHMARKS.md). Best effort: a kernel that refuses it only loses
/// that wake-up.
fn defer_accept(socket: &TcpSocket) {
    #[cfg(target_os = "linux")]
    if let Err(error) =
        nix::sys::socket::setsockopt(socket, defer::TcpDeferAccept, &DEFER_ACCEPT_SECS)
    {
        tracing::debug!(%error, "TCP_DEFER_ACCEPT refused");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}

/// Binds `addr` once per worker (`count`) with SO_REUSEPORT, so the kernel
/// spreads new connections evenly over the workers, as nginx's `reuseport`
/// does. Several accept loops on one shared socket let whichever worker wakes
/// first take a burst of connections (seen: all 64 of a benchmark's on one
/// worker, the other idle).
///
/// Connections reach `accept` once they have sent something (`defer_accept`).
///
/// An address something already listens on is refused (a plain bind is tried
/// first): SO_REUSEPORT alone would let two teal daemons of the same user
/// share a port without a word.
pub(crate) async fn bind(addr: SocketAddr, count: usize) -> Result<Bound, RouteError> {
    let fail = |cause| RouteError::Bind { addr, cause };
    if addr.port() != 0 {
        drop(std::net::TcpListener::bind(addr).map_err(fail)?);
    }
    let mut bound = addr;
    let mut sockets = Vec::with_capacity(count.max(1));
    for _ in 0..count.max(1) {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(fail)?;
        socket.set_reuseaddr(true).map_err(fail)?;
        socket.set_reuseport(true).map_err(fail)?;
        socket.bind(bound).map_err(fail)?;
        defer_accept(&socket);
        let listener = socket.listen(BACKLOG).map_err(fail)?;
        // With port 0 the first bind picks the port; the others join it.
        bound = listener.local_addr().map_err(fail)?;
        sockets.push(listener.into_std().map_err(fail)?);
    }
    Ok(Bound {
        addr: bound,
        sockets,
    })
}

impl Bound {
    /// A predecessor's sockets for one listener (see `handover`).
    pub(crate) fn inherited(listening: Listening) -> Result<Bound, RouteError> {
        let addr = listening.addr;
        let fail = |cause| RouteError::Bind { addr, cause };
        let sockets = listening
            .sockets
            .into_iter()
            .map(|fd| {
                let socket = std::net::TcpListener::from(fd);
                socket.set_nonblocking(true)?;
                Ok(socket)
            })
            .collect::<io::Result<Vec<_>>>()
            .map_err(fail)?;
        let addr = match sockets.first() {
            Some(socket) => socket.local_addr().map_err(fail)?,
            None => addr,
        };
        Ok(Bound { addr, sockets })
    }
}

/// Starts accepting on `bound` until the proxy stops: one accept loop per
/// socket, each on a worker thread of its own (round robin when the sockets
/// came from a predecessor with another number of workers), registered with
/// that worker's event loop, so a connection is served start to end by the
/// worker the kernel gave it to. Keeps a duplicate of each socket for a
/// successor (`Proxy::listening_sockets`).
pub(crate) fn spawn_accept(proxy: &Arc<Proxy>, bound: Bound, listener: ListenerKind) {
    let copies = bound
        .sockets
        .iter()
        .map(|socket| socket.try_clone().map(OwnedFd::from))
        .collect::<io::Result<Vec<_>>>();
    match copies {
        Ok(sockets) => proxy
            .listening
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Listening {
                name: listener.name(),
                addr: bound.addr,
                sockets,
            }),
        Err(error) => {
            tracing::warn!(%error, addr = %bound.addr, "cannot keep a copy of a listening socket: a successor will bind it anew");
        }
    }
    let workers = proxy.workers.handles();
    for (index, socket) in bound.sockets.into_iter().enumerate() {
        let accept = accept_loop(Arc::clone(proxy), socket, listener.clone());
        workers[index % workers.len()].spawn(proxy.connections.track_future(accept));
    }
}

async fn accept_loop(proxy: Arc<Proxy>, socket: std::net::TcpListener, kind: ListenerKind) {
    // Registered with the event loop of the worker this runs on.
    let socket = match TcpListener::from_std(socket) {
        Ok(socket) => socket,
        Err(error) => {
            tracing::error!(%error, "cannot register a listener with a proxy worker");
            return;
        }
    };
    // This worker's own view of the stop (shutdown or hand-over): its
    // connections wait on it without sharing a lock with the other workers'.
    let stop = proxy.stop.child_token();
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = proxy.accepting.cancelled() => {}
    }
    let mut pause = AcceptPause::new("proxy");
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = socket.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait, do not spin.
                let wait = pause.after(&error);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
        };
        if let (ListenerKind::Tls, Some((_, acceptor))) = (&kind, &proxy.tls) {
            let task = serve_tls(
                Arc::clone(&proxy),
                acceptor.clone(),
                stream,
                peer.ip(),
                stop.clone(),
            );
            proxy.connections.spawn(task);
            continue;
        }
        let task = serve(
            Arc::clone(&proxy),
            stream,
            peer.ip(),
            kind.clone(),
            stop.clone(),
        );
        proxy.connections.spawn(task);
    }
}

/// Serves one connection (accepted, or handed over by a predecessor) until it
/// closes, idles out, upgrades, the proxy shuts down, or it moves to a
/// successor. `stop` is this worker's child of the proxy's stop token.
pub(crate) async fn serve(
    proxy: Arc<Proxy>,
    stream: TcpStream,
    client: IpAddr,
    listener: ListenerKind,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let _open = Gauge::enter(&proxy.conns.open);
    let addr = ClientAddr::new(client);
    let stop = Stop {
        token: &stop,
        handing_over: &proxy.handing_over,
    };
    let handoff = match crate::lean::serve(&proxy, &addr, &listener, stream, stop).await {
        Handoff::Http1(io) => {
            proxy.conns.handed_to_hyper.fetch_add(1, Ordering::Relaxed);
            let kind = listener.clone();
            crate::hyper::serve_http1(Arc::clone(&proxy), addr, kind, io, stop).await
        }
        Handoff::H2(io) => {
            let kind = listener.clone();
            crate::hyper::serve_h2(Arc::clone(&proxy), addr, kind, io, stop).await;
            Handoff::Closed
        }
        other => other,
    };
    if let Handoff::Successor(stream) = handoff {
        proxy.send_to_successor(stream, &listener, client);
    }
}

impl Proxy {
    /// Sends a connection that reached a request boundary during a hand-over
    /// to the successor (closes it if the successor is gone).
    pub(crate) fn send_to_successor(&self, stream: TcpStream, kind: &ListenerKind, client: IpAddr) {
        let listener = kind.name();
        let Ok(stream) = stream.into_std() else {
            return;
        };
        let successor = self.successor.lock().unwrap_or_else(|e| e.into_inner());
        let Some(successor) = successor.as_ref() else {
            return;
        };
        let conn = HandedConn {
            listener,
            stream,
            client,
        };
        if successor.send(conn).is_ok() {
            self.conns.handed_over.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Serves one connection accepted on the TLS listener: the handshake, within
/// the header read timeout (a client that sends nothing, or too slowly, is
/// closed then), then hyper's HTTP/2 or HTTP/1.1 until it closes. A TLS
/// connection never moves to a successor: during a hand-over it serves one
/// more response and closes (`hyper::serve_http1`, GOAWAY for h2).
async fn serve_tls(
    proxy: Arc<Proxy>,
    acceptor: TlsAcceptor,
    stream: TcpStream,
    client: IpAddr,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let _open = Gauge::enter(&proxy.conns.open);
    let handshake = tokio::time::timeout(proxy.opts.header_read_timeout, acceptor.accept(stream));
    tokio::pin!(handshake);
    let handshake = tokio::select! {
        done = &mut handshake => done,
        _ = stop.cancelled() => {
            if !proxy.handing_over.load(Ordering::Acquire) {
                return;
            }
            // A hand-over: the client is finishing its handshake to send a
            // request; serve that one here (it cannot move).
            handshake.await
        }
    };
    let tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%error, %client, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%client, "TLS handshake timed out");
            return;
        }
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = ClientIo::over(
        bytes::Bytes::new(),
        ClientStream::Tls(Box::new(tls)),
        proxy.opts.send_timeout,
    );
    let addr = ClientAddr::over_tls(client);
    let stop = Stop {
        token: &stop,
        handing_over: &proxy.handing_over,
    };
    if h2 {
        crate::hyper::serve_h2(Arc::clone(&proxy), addr, ListenerKind::Tls, io, stop).await;
    } else {
        crate::hyper::serve_http1(Arc::clone(&proxy), addr, ListenerKind::Tls, io, stop).await;
    }
}
