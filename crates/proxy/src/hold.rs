//! What a gated request meets (`routes::gate` sets them): a maintenance
//! [`Notice`] (the 503 it gets) and a [`Pause`] (the wait, bounded in time and
//! in how many are held). A leaf: the error type carries both.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

/// Requests one pause holds at most; past it a request gets 503 at once, so
/// a pause cannot take the memory of a daemon under load.
pub const MAX_HELD: usize = 10_000;

/// A maintenance answer, built once when it is set.
#[derive(Debug)]
pub(crate) struct Notice {
    pub(crate) body: Bytes,
    pub(crate) content_type: &'static str,
    /// Seconds, for `Retry-After`.
    pub(crate) retry_after: u32,
}

/// One pause as requests see it.
#[derive(Debug)]
pub(crate) struct Pause {
    timeout: Duration,
    retry_after: u32,
    /// Flipped to true when the pause is lifted or replaced: every held
    /// request wakes and routes again.
    released: watch::Sender<bool>,
    /// Requests held now (bounded by `MAX_HELD`).
    held: AtomicUsize,
}

impl Pause {
    pub(crate) fn new(timeout: Duration, retry_after: u32) -> Pause {
        Pause {
            timeout,
            retry_after,
            released: watch::Sender::new(false),
            held: AtomicUsize::new(0),
        }
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn retry_after(&self) -> u32 {
        self.retry_after
    }

    /// Waits until the pause is lifted (Ok), or the request's time is up or
    /// too many are held already: Err with the 503's `Retry-After` seconds.
    pub(crate) async fn wait(&self) -> Result<(), u32> {
        if self.held.fetch_add(1, Ordering::AcqRel) >= MAX_HELD {
            self.held.fetch_sub(1, Ordering::AcqRel);
            return Err(self.retry_after);
        }
        let mut released = self.released.subscribe();
        let waited = tokio::time::timeout(self.timeout, released.wait_for(|r| *r)).await;
        self.held.fetch_sub(1, Ordering::AcqRel);
        waited.map(|_| ()).map_err(|_| self.retry_after)
    }

    /// Wakes every held request (the pause was lifted or replaced).
    pub(crate) fn release(&self) {
        self.released.send_replace(true);
    }
}

#[cfg(test)]
mod tests;
