//! What both HTTP paths share about a client connection: the socket with
//! bytes put back in front (`io`), the client's address text (`addr`), how a
//! connection moves from the lean path to hyper's ([`Handoff`]), and the
//! counters and timing of open and parked connections.

mod addr;
mod io;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

pub(crate) use addr::ClientAddr;
pub(crate) use io::ClientIo;

/// How often an idle connection checks whether it should park: on either path
/// it drops its buffers after one to two periods without a request.
pub(crate) const PARK_CHECK: Duration = Duration::from_secs(1);

/// Smallest request head limit, whatever is configured (hyper's smallest read
/// buffer; the lean path uses the same floor).
pub(crate) const MIN_HEADER_BYTES: usize = 8 * 1024;

/// Client connections the proxy holds open now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientConnections {
    pub open: usize,
    /// Of those, idle HTTP/1.1 connections holding no buffers.
    pub parked: usize,
}

/// Open client connections by state, for `/metrics` and tests.
#[derive(Default)]
pub(crate) struct ConnCounts {
    pub(crate) open: AtomicUsize,
    pub(crate) parked: AtomicUsize,
    /// HTTP/1.1 connections the lean path handed to hyper, ever.
    pub(crate) handed_to_hyper: AtomicU64,
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
