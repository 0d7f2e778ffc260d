//! Upgraded connections (websockets and other `101` tunnels) of one slot: how
//! many are open, and the order that closes them when a drain reaches its
//! deadline. The tunnels themselves live in `hyper::tunnel`; this module only
//! counts them and carries the order.
//!
//! The rule: at the drain deadline every upgraded connection still open on the
//! slot is closed, whether the slot is then stopped or kept warm for a
//! rollback. Each one waits a random offset within the order's `spread` first,
//! so that clients do not all reconnect in the same instant.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

/// How long a tunnel told to close waits for the peers' close frames before
/// it shuts the sockets.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The longest spread of the closes (a tenth of the drain timeout when that
/// is shorter).
pub(crate) const MAX_SPREAD: Duration = Duration::from_secs(1);

/// What a drain at its deadline tells the slot's open tunnels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CloseOrder {
    /// Each tunnel starts closing at a random offset below this.
    pub(crate) spread: Duration,
}

/// The upgraded connections of one slot, across every pool it has had.
#[derive(Debug)]
pub(crate) struct Upgraded {
    /// Open tunnels; `drain` reads it at the deadline and waits for zero.
    open: AtomicUsize,
    /// Woken each time `open` reaches zero.
    none: Notify,
    /// The latest close order. A tunnel subscribes when it opens, so an order
    /// given before it opened does not reach it.
    order: watch::Sender<Option<CloseOrder>>,
}

impl Default for Upgraded {
    fn default() -> Upgraded {
        Upgraded {
            open: AtomicUsize::new(0),
            none: Notify::new(),
            order: watch::channel(None).0,
        }
    }
}

impl Upgraded {
    /// A tunnel opened: counted until the returned claim is dropped; the
    /// receiver hears the close orders given from now on.
    pub(crate) fn open(&self) -> (UpgradedClaim<'_>, watch::Receiver<Option<CloseOrder>>) {
        self.open.fetch_add(1, Ordering::AcqRel);
        (UpgradedClaim { of: self }, self.order.subscribe())
    }

    pub(crate) fn count(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Tells every open tunnel to close (spread over `spread`) and waits until
    /// they are gone, or `limit`. Returns how many were told.
    pub(crate) async fn close_all(&self, spread: Duration, limit: Duration) -> usize {
        let told = self.count();
        if told == 0 {
            return 0;
        }
        self.order.send_replace(Some(CloseOrder { spread }));
        let deadline = tokio::time::Instant::from_std(Instant::now() + limit);
        loop {
            let none = self.none.notified();
            tokio::pin!(none);
            none.as_mut().enable();
            if self.count() == 0 {
                return told;
            }
            if tokio::time::timeout_at(deadline, none).await.is_err() {
                return told;
            }
        }
    }
}

/// One open tunnel's place in the count.
pub(crate) struct UpgradedClaim<'a> {
    of: &'a Upgraded,
}

impl Drop for UpgradedClaim<'_> {
    fn drop(&mut self) {
        if self.of.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.of.none.notify_waiters();
        }
    }
}

/// The spread for a drain of `timeout`: a tenth of it, at most `MAX_SPREAD`.
pub(crate) fn spread_for(timeout: Duration) -> Duration {
    (timeout / 10).min(MAX_SPREAD)
}
