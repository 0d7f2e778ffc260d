//! What both HTTP paths share about a client connection: the socket with
//! bytes put back in front (`io`), the client's address text (`addr`), how a
//! connection moves from the lean path to hyper's ([`Handoff`]), and the
//! counters and timing of open and parked connections.

mod addr;
mod io;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

pub(crate) use addr::ClientAddr;
pub(crate) use io::{ClientIo, ClientStream};

/// How often an idle connection checks whether it should park: on either path
/// it drops its buffers after one to two periods without a request.
pub(crate) const PARK_CHECK: Duration = Duration::from_secs(1);

/// Smallest request head limit, whatever is configured (hyper's smallest read
/// buffer; the lean path uses the same floor).
pub(crate) const MIN_HEADER_BYTES: usize = 8 * 1024;

/// Client connections the proxy holds open now, and the requests refused on
/// them before any routing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientConnections {
    pub open: usize,
    /// Of those, idle HTTP/1.1 connections holding no buffers.
    pub parked: usize,
    /// Requests refused so far because their head was malformed or too large
    /// (answered 400 or 431, then closed): no service saw them.
    pub malformed_requests: u64,
    /// Access log lines dropped so far because its writer fell behind; None
    /// without an access log.
    pub access_log_dropped_lines: Option<u64>,
}

/// Open client connections by state, for `/metrics` and tests.
#[derive(Default)]
pub(crate) struct ConnCounts {
    pub(crate) open: AtomicUsize,
    pub(crate) parked: AtomicUsize,
    /// HTTP/1.1 connections the lean path handed to hyper, ever.
    pub(crate) handed_to_hyper: AtomicU64,
    /// Connections handed to a successor proxy, ever.
    pub(crate) handed_over: AtomicU64,
    /// Request heads hyper refused as malformed or too large, ever (the lean
    /// path hands every head it cannot parse to hyper, so they all end here).
    pub(crate) malformed_requests: AtomicU64,
}

/// How a connection goes on after the lean path let go of it.
pub(crate) enum Handoff {
    /// It closed, idled out, or the proxy is stopping.
    Closed,
    /// A request the lean path does not handle: hyper's HTTP/1.1 from here on.
    Http1(ClientIo),
    /// It opened with the HTTP/2 preface (h2c with prior knowledge).
    H2(ClientIo),
    /// The proxy is handing over to a successor, and the connection is at a
    /// request boundary with nothing read from it: the successor serves it.
    Successor(TcpStream),
}

/// A connection's view of the proxy stopping. `token` (its worker's child of
/// the proxy's stop token) fires on shutdown and on a hand-over;
/// `handing_over` tells which. On shutdown a response written from then on
/// says `Connection: close`; on a hand-over nothing is said to the client and
/// the connection moves to the successor at its next request boundary.
#[derive(Clone, Copy)]
pub(crate) struct Stop<'a> {
    pub(crate) token: &'a CancellationToken,
    pub(crate) handing_over: &'a AtomicBool,
}

impl Stop<'_> {
    /// Where the proxy stands, with one look at the token (it takes a lock).
    pub(crate) fn now(&self) -> Stopping {
        if !self.token.is_cancelled() {
            Stopping::No
        } else if self.handing_over.load(Ordering::Acquire) {
            Stopping::HandingOver
        } else {
            Stopping::Closing
        }
    }

    /// The proxy is shutting down (not handing over): close after this response.
    pub(crate) fn closing(&self) -> bool {
        self.now() == Stopping::Closing
    }

    /// The proxy is handing its connections to a successor.
    pub(crate) fn handing_over(&self) -> bool {
        self.now() == Stopping::HandingOver
    }
}

/// What [`Stop::now`] saw.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopping {
    No,
    /// Shutting down: close connections at their next boundary.
    Closing,
    /// Handing over: move connections to the successor at their next boundary.
    HandingOver,
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
