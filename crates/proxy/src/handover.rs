//! Handing the proxy over to a successor (the next daemon) without refusing a
//! connection or losing a request: first its listening sockets, then its
//! client connections, each at a request boundary.
//!
//! - [`Proxy::listening_sockets`] gives duplicates of every listening socket
//!   (production and previews, every worker's). A duplicate is the same socket
//!   with the same accept queue: the successor accepts from it while this proxy
//!   still does, and nothing waiting in a queue is lost when this proxy closes
//!   its copy (it never calls `shutdown(2)` on one).
//! - [`Proxy::bind_inherited`] starts a proxy on such sockets instead of
//!   binding new ones; previews are taken when their service is installed.
//! - [`Proxy::hand_over`] stops accepting and moves each HTTP/1.1 client
//!   connection to the successor as soon as it is idle with nothing read
//!   from it: parked ones at once, busy ones once their response is written
//!   (nothing is said to the client; no `Connection: close`). A request head
//!   half read is read and served here first. h2c connections end gracefully
//!   (GOAWAY) and websockets stay until they close or the owner's deadline.
//!   TLS connections cannot move (their session keys live here): an HTTP/1.1
//!   one is served here for one more response, which says `Connection:
//!   close` (the one in progress, or an idle connection's next; an idle one
//!   that gets none closes at the idle timeout), and h2 gets GOAWAY. The TLS
//!   listening socket moves like the others (`ListenerName::Tls`).
//! - [`Proxy::serve_handed`] serves a connection handed over, as if accepted.
//!
//! How sockets travel between processes (SCM_RIGHTS) is the owner's business.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::RouteError;
use crate::listener::{self, HandedConn, Listening};
use crate::routes::{ListenerKind, ListenerName};
use crate::{Proxy, ProxyOptions};

impl Proxy {
    /// [`Proxy::bind_with`], but on the listening sockets of a predecessor
    /// where they match: production's when `listen` is its address (or port
    /// 0), a preview's when its service is installed with its address.
    /// Sockets nothing here takes are closed when the proxy stops. Nothing is
    /// accepted until [`Proxy::start_accepting`]: until then the predecessor
    /// alone serves, and this proxy can fail without a client noticing.
    pub async fn bind_inherited(
        listen: SocketAddr,
        opts: ProxyOptions,
        shutdown: CancellationToken,
        inherited: Vec<Listening>,
    ) -> Result<Arc<Proxy>, RouteError> {
        Proxy::start(listen, opts, shutdown, inherited).await
    }

    /// Starts the accept loops of a proxy made by [`Proxy::bind_inherited`]
    /// (a proxy bound anew accepts from the start).
    pub fn start_accepting(&self) {
        self.accepting.cancel();
    }

    /// Duplicates of every socket this proxy listens on, for a successor.
    pub fn listening_sockets(&self) -> io::Result<Vec<Listening>> {
        let listening = self.listening.lock().unwrap_or_else(|e| e.into_inner());
        listening
            .iter()
            .map(|l| {
                Ok(Listening {
                    name: l.name.clone(),
                    addr: l.addr,
                    sockets: l
                        .sockets
                        .iter()
                        .map(OwnedFd::try_clone)
                        .collect::<io::Result<_>>()?,
                })
            })
            .collect()
    }

    /// Stops accepting, and from now on sends each client connection to
    /// `successor` at its next request boundary (see the module doc). The
    /// owner then closes the proxy as usual (`wait_closed`), which waits for
    /// the connections still busy here.
    pub fn hand_over(&self, successor: mpsc::UnboundedSender<HandedConn>) {
        *self.successor.lock().unwrap_or_else(|e| e.into_inner()) = Some(successor);
        self.handing_over.store(true, Ordering::Release);
        self.stop.cancel();
        tracing::info!(
            "proxy handing over: accept loops stopped, connections move at their next request boundary"
        );
    }

    /// Ends a hand-over once the proxy is closed (`wait_closed`): no
    /// connection is left to send, so the successor's channel is dropped and
    /// its receiver sees the end.
    pub fn end_hand_over(&self) {
        self.successor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// Serves a connection a predecessor handed over, on one of the workers.
    /// A connection for a listener this proxy does not know is closed.
    pub fn serve_handed(self: &Arc<Self>, conn: HandedConn) {
        let kind = match &conn.listener {
            ListenerName::Production => ListenerKind::Production,
            ListenerName::Tls => {
                // Never sent: a TLS session cannot move between processes.
                tracing::warn!("a handed-over connection for the TLS listener: closed");
                return;
            }
            ListenerName::Preview(service) => match self.table.load().service(service) {
                Some(routes) => ListenerKind::Preview(Arc::clone(routes)),
                None => {
                    tracing::warn!(%service, "a handed-over connection for an unknown preview: closed");
                    return;
                }
            },
        };
        let worker = self.handed_next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        let proxy = Arc::clone(self);
        let task = async move {
            let Ok(()) = conn.stream.set_nonblocking(true) else {
                return;
            };
            // Registered with the event loop of the worker this runs on.
            let Ok(stream) = TcpStream::from_std(conn.stream) else {
                return;
            };
            let stop = proxy.stop.child_token();
            listener::serve(proxy, stream, conn.client, kind, stop).await;
        };
        self.workers.handles()[worker].spawn(self.connections.track_future(task));
    }

    /// Client connections this proxy handed to a successor so far.
    pub fn connections_handed_over(&self) -> u64 {
        self.conns.handed_over.load(Ordering::Relaxed)
    }
}
