//! The retry rules both forwarding paths share (hyper's `forward.rs` and the
//! lean `h1/exchange.rs`), kept in one place so the two cannot drift apart:
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

use std::sync::Arc;

use super::pool::Pool;

/// Where one request stands in its attempts.
pub(crate) struct Attempts {
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
    pub(crate) fn new(pool: &Pool) -> Attempts {
        Attempts {
            exclude: None,
            connect_retry: pool.len() > 1,
            resend_reused: true,
            resend_fresh: true,
            fresh_only: false,
        }
    }

    /// The endpoint to try next.
    pub(crate) fn pick(&self, pool: &Pool) -> usize {
        pool.pick(self.exclude)
    }

    /// Whether an idle connection may be used (not after a resend).
    pub(crate) fn may_reuse(&self) -> bool {
        !self.fresh_only
    }

    /// Connecting to endpoint `index` failed: it is ejected. True when the
    /// request should try another endpoint.
    pub(crate) fn connect_failed(&mut self, pool: &Arc<Pool>, index: usize) -> bool {
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
    pub(crate) fn may_resend(&self, reused: bool) -> bool {
        if reused {
            self.resend_reused
        } else {
            self.resend_fresh
        }
    }

    /// The request is sent again after failing on endpoint `index`.
    pub(crate) fn resending(&mut self, pool: &Arc<Pool>, index: usize, reused: bool) {
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
