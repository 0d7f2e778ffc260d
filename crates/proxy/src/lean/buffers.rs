//! A client connection's buffers on the lean path, and the worker's spares.
//!
//! A connection needs three buffers while it is busy: the bytes read from the
//! client, the upstream head being written and the client's response head.
//! Allocating them for every new connection (and again each time a parked
//! connection wakes) cost a malloc, a chain of reallocs as the heads grew, and
//! a free per buffer. Instead each worker thread keeps a few spare sets: a
//! connection takes one when it starts or wakes and gives it back when it
//! parks or ends. The spares are bounded in number and in size, so idle
//! connections still hold nothing and memory does not grow with past bursts.
//!
//! The spares are thread-local: a worker's connections never leave its thread
//! (`workers.rs`), so no lock or atomic is touched.

use std::cell::RefCell;

use bytes::BytesMut;

/// Capacity of a fresh client read buffer (one request head in one read).
pub(crate) const HEAD_READ_SIZE: usize = 4 * 1024;

/// Capacity of a fresh head buffer (upstream request head, client response
/// head): most heads fit; a longer one grows it once, and a spare keeps what
/// it grew to. Fresh sets are made in bursts of new connections, so this is
/// kept small (10,000 at once: 10 MiB less than with 1 KiB).
const HEAD_WRITE_SIZE: usize = 512;

/// Spare sets kept per worker thread.
const MAX_SPARES: usize = 64;

/// A buffer that grew beyond this (a large head, a body relayed through
/// `out`) is freed instead of kept.
const MAX_KEPT: usize = 16 * 1024;

thread_local! {
    static SPARES: RefCell<Vec<Set>> = const { RefCell::new(Vec::new()) };
}

/// The three buffers, empty. Not a `ConnBuffers`: dropping one of those
/// (clearing the spares, or a thread ending) would give it back again.
struct Set {
    read: BytesMut,
    head: Vec<u8>,
    out: Vec<u8>,
}

/// One connection's buffers: what was read from the client (`read`), the
/// upstream request head (`head`) and what goes back to the client (`out`).
/// Dropping them gives them back to the worker's spares.
#[derive(Default)]
pub(crate) struct ConnBuffers {
    pub(crate) read: BytesMut,
    pub(crate) head: Vec<u8>,
    pub(crate) out: Vec<u8>,
}

impl ConnBuffers {
    /// A set from the worker's spares, or a new one.
    pub(crate) fn take() -> ConnBuffers {
        let spare = SPARES.with(|spares| spares.borrow_mut().pop());
        let set = spare.unwrap_or_else(|| Set {
            read: BytesMut::with_capacity(HEAD_READ_SIZE),
            head: Vec::with_capacity(HEAD_WRITE_SIZE),
            out: Vec::with_capacity(HEAD_WRITE_SIZE),
        });
        ConnBuffers {
            read: set.read,
            head: set.head,
            out: set.out,
        }
    }

    /// Whether this holds any memory (a parked connection holds none).
    pub(crate) fn is_held(&self) -> bool {
        self.read.capacity() > 0 || self.head.capacity() > 0 || self.out.capacity() > 0
    }

    /// Gives the buffers back (see `Drop`) and leaves this holding none.
    pub(crate) fn release(&mut self) {
        drop(std::mem::take(self));
    }
}

impl Drop for ConnBuffers {
    fn drop(&mut self) {
        let read = std::mem::take(&mut self.read);
        let mut head = std::mem::take(&mut self.head);
        let mut out = std::mem::take(&mut self.out);
        // Unread bytes are this connection's alone: a buffer still holding
        // some is freed with them, never handed to another connection.
        let reusable = read.is_empty()
            && (1..=MAX_KEPT).contains(&read.capacity())
            && (1..=MAX_KEPT).contains(&head.capacity())
            && (1..=MAX_KEPT).contains(&out.capacity());
        if !reusable {
            return;
        }
        head.clear();
        out.clear();
        // `try_with`: a thread being torn down has no spares any more.
        let _ = SPARES.try_with(|spares| {
            let mut spares = spares.borrow_mut();
            if spares.len() < MAX_SPARES {
                spares.push(Set { read, head, out });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spares() -> usize {
        SPARES.with(|s| s.borrow().len())
    }

    #[test]
    fn a_dropped_set_is_taken_again_empty_and_with_its_memory() {
        SPARES.with(|s| s.borrow_mut().clear());
        let mut first = ConnBuffers::take();
        first.read.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let _ = first.read.split_to(first.read.len());
        first.head.extend_from_slice(b"head");
        first.out.extend_from_slice(b"out");
        let ptr = first.head.as_ptr();
        drop(first);
        assert_eq!(spares(), 1);
        let again = ConnBuffers::take();
        assert_eq!(spares(), 0);
        assert_eq!(again.head.as_ptr(), ptr, "the same allocation came back");
        assert!(again.read.is_empty() && again.head.is_empty() && again.out.is_empty());
        assert!(again.read.capacity() > 0);
    }

    #[test]
    fn unread_bytes_and_grown_buffers_are_not_kept() {
        SPARES.with(|s| s.borrow_mut().clear());
        let mut pending = ConnBuffers::take();
        pending.read.extend_from_slice(b"GET /next");
        drop(pending);
        assert_eq!(spares(), 0, "a buffer with a client's bytes was kept");
        let mut grown = ConnBuffers::take();
        grown.out.reserve(MAX_KEPT * 2);
        drop(grown);
        assert_eq!(spares(), 0, "a grown buffer was kept");
    }

    #[test]
    fn release_leaves_nothing_held_and_spares_are_bounded() {
        SPARES.with(|s| s.borrow_mut().clear());
        let mut held = ConnBuffers::take();
        assert!(held.is_held());
        held.release();
        assert!(!held.is_held());
        assert_eq!(spares(), 1);
        let sets: Vec<ConnBuffers> = (0..MAX_SPARES + 10).map(|_| ConnBuffers::take()).collect();
        drop(sets);
        assert_eq!(spares(), MAX_SPARES);
    }
}
