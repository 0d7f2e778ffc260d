//! The retry loop both forwarding paths share (`lean::exchange` and
//! `hyper::forward`), with its rules, kept in one place so the two cannot
//! drift apart. Each path says how it sends a request on one of its upstream
//! connections ([`Attempt`]); [`send`] picks endpoints, reuses or opens
//! connections, and decides what happens after a failure:
//!
//! - a failed connect ejects the endpoint and moves to another one, once
//!   (nothing was sent);
//! - a replayable request that failed before any response byte on a *reused*
//!   connection is sent again once, on a fresh connection;
//! - one that failed the same way on a *fresh* connection (the endpoint
//!   accepted, then closed: a container behind the engine's userland proxy that
//!   just died) is sent again once on another endpoint, like nginx's
//!   `proxy_next_upstream error`, and the endpoint is ejected;
//! - never after a response head arrived (the callers do not ask).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ProxyError;
use crate::pool::inflight::InFlight;
use crate::pool::{Endpoint, Pool};
use crate::upstream::UpstreamCtx;
use crate::upstream::idle::{IdleStack, Reusable};

/// One path's way of sending a request on one of its upstream connections.
pub(crate) trait Attempt {
    /// The path's kind of upstream connection.
    type Conn: Reusable;
    /// What a successful attempt gives: a response head, at least.
    type Answer;
    /// Why the exchange ended without an answer.
    type Error: From<ProxyError>;

    /// The endpoint's idle connections of this kind.
    fn idle(endpoint: &Endpoint) -> &IdleStack<Self::Conn>;

    /// Opens a fresh connection to `addr`.
    async fn connect(ctx: &UpstreamCtx, addr: SocketAddr) -> Result<Self::Conn, ProxyError>;

    /// A connection to `endpoint` already open, if any: by default this
    /// worker's newest idle one (an h2c request shares a worker's HTTP/2
    /// connection instead).
    fn reuse(&self, endpoint: &Endpoint, idle_timeout: Duration) -> Option<Self::Conn> {
        Self::idle(endpoint).take(idle_timeout)
    }

    /// Opens a fresh connection to `endpoint`: by default `connect`.
    async fn open(&self, ctx: &UpstreamCtx, endpoint: &Endpoint) -> Result<Self::Conn, ProxyError> {
        Self::connect(ctx, endpoint.addr()).await
    }

    /// Sends the request on `conn` and waits for its answer. `may_resend`:
    /// the rules allow sending it again if it fails before any response byte
    /// (the path adds its own condition, e.g. that the request is replayable,
    /// and keeps what it needs to send it again).
    async fn send(
        &mut self,
        conn: &mut Self::Conn,
        may_resend: bool,
    ) -> Result<Self::Answer, Failure<Self::Error>>;
}

/// How an attempt failed.
pub(crate) enum Failure<E> {
    /// Before any response byte, and the request can go again: it will, on a
    /// fresh connection. The error is only logged.
    Resend(ProxyError),
    /// The exchange ends here.
    Fatal(E),
}

/// Sends `attempt`'s request to one of the pool of `guard` until an answer
/// comes, with the rules in the module doc; the request's in-flight claim
/// follows it from endpoint to endpoint. Returns the endpoint's index and the
/// connection the answer came on.
pub(crate) async fn send<A: Attempt>(
    guard: &mut InFlight,
    attempt: &mut A,
) -> Result<(usize, A::Conn, A::Answer), A::Error> {
    let pool = Arc::clone(guard.pool());
    let ctx = &pool.ctx;
    let mut attempts = Attempts::new(&pool);
    loop {
        let index = attempts.pick(&pool);
        guard.attach(index);
        let endpoint = pool.endpoint(index);
        let idle = if attempts.may_reuse() {
            attempt.reuse(endpoint, ctx.idle_timeout)
        } else {
            None
        };
        let reused = idle.is_some();
        let mut conn = match idle {
            Some(conn) => conn,
            None => match attempt.open(ctx, endpoint).await {
                Ok(conn) => conn,
                Err(error) if attempts.connect_failed(&pool, index) => {
                    tracing::debug!(%error, "connect failed: trying another endpoint");
                    continue;
                }
                Err(error) => return Err(error.into()),
            },
        };
        match attempt.send(&mut conn, attempts.may_resend(reused)).await {
            Ok(answer) => return Ok((index, conn, answer)),
            Err(Failure::Fatal(error)) => return Err(error),
            Err(Failure::Resend(error)) => {
                tracing::debug!(%error, reused, "resending on a fresh upstream connection");
                attempts.resending(&pool, index, reused);
            }
        }
    }
}

/// Where one request stands in its attempts.
struct Attempts {
    /// The endpoint not to pick next, if any.
    exclude: Option<usize>,
    /// A failed connect may still move to another endpoint.
    connect_retry: bool,
    /// A failure on a reused connection may still be resent.
    resend_reused: bool,
    /// A failure on a fresh connection may still be resent.
    resend_fresh: bool,
    /// After a resend, only fresh connections are used.
    fresh_only: bool,
}

impl Attempts {
    fn new(pool: &Pool) -> Attempts {
        Attempts {
            exclude: None,
            connect_retry: pool.len() > 1,
            resend_reused: true,
            resend_fresh: true,
            fresh_only: false,
        }
    }

    /// The endpoint to try next.
    fn pick(&self, pool: &Pool) -> usize {
        pool.pick(self.exclude)
    }

    /// Whether an idle connection may be used (not after a resend).
    fn may_reuse(&self) -> bool {
        !self.fresh_only
    }

    /// Connecting to endpoint `index` failed: it is ejected. True when the
    /// request should try another endpoint.
    fn connect_failed(&mut self, pool: &Arc<Pool>, index: usize) -> bool {
        pool.eject(index);
        if !self.connect_retry {
            return false;
        }
        self.connect_retry = false;
        self.exclude = Some(index);
        true
    }

    /// Whether a replayable request that failed before any response byte on a
    /// `reused` (or fresh) connection may be sent again.
    fn may_resend(&self, reused: bool) -> bool {
        if reused {
            self.resend_reused
        } else {
            self.resend_fresh
        }
    }

    /// The request is sent again after failing on endpoint `index`.
    fn resending(&mut self, pool: &Arc<Pool>, index: usize, reused: bool) {
        self.fresh_only = true;
        if reused {
            self.resend_reused = false;
            self.exclude = None;
        } else {
            // It accepted a connection it could not serve: out of rotation
            // until its health check passes; try another endpoint.
            self.resend_fresh = false;
            pool.eject(index);
            self.exclude = (pool.len() > 1).then_some(index);
        }
    }
}
