//! Connections to endpoints: connecting (with a timeout and TCP_NODELAY), and a
//! small per-endpoint stack of idle HTTP/1.1 connections for reuse.
//!
//! Idle connections expire after `idle_timeout`, kept below the apps' own
//! keep-alive timeout so the proxy never reuses a connection the app is about to
//! close. This module does not decide which endpoint to use, nor when to retry.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::body::UpstreamBody;
use super::error::ProxyError;

/// A sender for requests on one upstream connection.
pub(crate) type Sender = SendRequest<UpstreamBody>;

/// What every pool needs to open and keep upstream connections.
pub(crate) struct UpstreamCtx {
    /// Idle stacks keep one lane per worker thread, plus lane 0 for others.
    pub(crate) lanes: usize,
    pub(crate) connect_timeout: Duration,
    /// How long a sent request waits for its response head.
    pub(crate) response_timeout: Duration,
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

impl UpstreamCtx {
    /// Opens a fresh HTTP/1.1 connection to `addr`.
    pub(crate) async fn connect(&self, addr: SocketAddr) -> Result<Sender, ProxyError> {
        let stream =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(source)) => return Err(ProxyError::Connect { addr, source }),
                Err(_) => return Err(ProxyError::ConnectTimeout { addr }),
            };
        // Small writes (headers) must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|source| ProxyError::Connect {
                addr,
                source: io::Error::other(source),
            })?;
        // Runs on the calling worker; a hard stop ends it with that worker.
        self.tasks.spawn(async move {
            if let Err(error) = conn.with_upgrades().await {
                tracing::debug!(%addr, %error, "upstream connection ended");
            }
        });
        Ok(sender)
    }
}

/// An idle upstream connection that can tell, without waiting, whether it can
/// still take a request.
pub(crate) trait Reusable {
    fn is_reusable(&mut self) -> bool;
}

impl Reusable for Sender {
    fn is_reusable(&mut self) -> bool {
        self.is_ready()
    }
}

struct Idle<T> {
    conn: T,
    since: Instant,
}

/// Idle connections of one endpoint: one stack per worker thread (lane), newest
/// last, so a connection is reused by the worker whose event loop drives it.
/// A lane's lock is the only lock on the request path, taken for a push or a
/// pop, never across an await, and only ever contended by a pool clear.
pub(crate) struct IdleStack<T> {
    lanes: Box<[Lane<T>]>,
}

/// One worker's stack, alone on its cache lines: lanes side by side would
/// share one, and every push or pop on one worker would take it from the
/// other's cache.
#[repr(align(128))]
struct Lane<T>(Mutex<VecDeque<Idle<T>>>);

impl<T: Reusable> IdleStack<T> {
    pub(crate) fn new(lanes: usize) -> IdleStack<T> {
        IdleStack {
            lanes: (0..lanes.max(1)).map(|_| Lane(Mutex::default())).collect(),
        }
    }

    /// The calling thread's lane.
    fn lane(&self) -> &Mutex<VecDeque<Idle<T>>> {
        let lane = super::workers::current_lane().min(self.lanes.len() - 1);
        &self.lanes[lane].0
    }

    /// The newest idle connection of this thread's lane that is still fresh
    /// and ready, if any.
    pub(crate) fn take(&self, idle_timeout: Duration) -> Option<T> {
        let now = Instant::now();
        let mut stale = Vec::new();
        let found = {
            let Ok(mut conns) = self.lane().lock() else {
                return None;
            };
            loop {
                let Some(mut idle) = conns.pop_back() else {
                    break None;
                };
                if now.saturating_duration_since(idle.since) > idle_timeout {
                    // Everything below is older still.
                    stale.push(idle);
                    stale.extend(conns.drain(..));
                    break None;
                }
                if idle.conn.is_reusable() {
                    break Some(idle.conn);
                }
                stale.push(idle);
            }
        };
        // Closing happens outside the lock.
        drop(stale);
        found
    }

    /// Keeps `conn` for reuse on this thread's lane; drops the oldest when
    /// `max` are already kept there.
    pub(crate) fn put(&self, conn: T, idle_timeout: Duration, max: usize) {
        let now = Instant::now();
        let mut evicted = Vec::new();
        if let Ok(mut conns) = self.lane().lock() {
            while let Some(oldest) = conns.front() {
                if conns.len() >= max || now.saturating_duration_since(oldest.since) > idle_timeout
                {
                    evicted.extend(conns.pop_front());
                } else {
                    break;
                }
            }
            if max > 0 {
                conns.push_back(Idle { conn, since: now });
            }
        }
        drop(evicted);
    }

    pub(crate) fn clear(&self) {
        for lane in self.lanes.iter() {
            let all = match lane.0.lock() {
                Ok(mut conns) => std::mem::take(&mut *conns),
                Err(_) => continue,
            };
            drop(all);
        }
    }
}
