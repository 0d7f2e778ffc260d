//! A slot's traffic as its owner sees it: waiting for it to drain, and its
//! counters. (Installing routes is `Proxy::install`, in the crate root: it
//! binds preview listeners.)

use std::time::Duration;

use super::service::DrainReport;
use crate::Proxy;
use crate::pool::TrafficStats;
use crate::pool::upgraded;
use crate::slot::Slot;

impl Proxy {
    /// Waits until nothing is in flight to `slot` of `service`, or `timeout`.
    /// Requests that started before the last `set_routes` moved away from it
    /// count, on every pool the slot has had. At the deadline the slot's
    /// upgraded connections are closed (`pool::upgraded`: spread over up to
    /// a tenth of `timeout`, at most 1 s, each then waiting up to 1 s for
    /// the close replies), and the drain returns once they are gone. Other
    /// requests still in flight are left to finish (or to their instance's
    /// stop).
    pub async fn drain(&self, service: &str, slot: Slot, timeout: Duration) -> DrainReport {
        let service = self.table.load().service(service).cloned();
        let Some(service) = service else {
            return DrainReport {
                remaining: 0,
                timed_out: false,
                waited: Duration::ZERO,
                upgraded_closed: 0,
            };
        };
        let counter = service.slot_in_flight(slot);
        let (remaining, waited) = counter.wait_idle(timeout).await;
        let spread = upgraded::spread_for(timeout);
        // Every tunnel told starts closing within the spread and takes at
        // most CLOSE_WAIT plus its slack: the limit only guards against a
        // tunnel stuck past that.
        let limit = spread + upgraded::CLOSE_WAIT * 3;
        let upgraded_closed = if remaining > 0 {
            counter.upgraded().close_all(spread, limit).await
        } else {
            0
        };
        DrainReport {
            remaining,
            timed_out: remaining > 0,
            waited,
            upgraded_closed,
        }
    }

    /// Counters of `slot`'s current pool of `service`, since that pool was
    /// created.
    pub fn stats(&self, service: &str, slot: Slot) -> TrafficStats {
        self.table
            .load()
            .service(service)
            .map(|service| service.stats(slot))
            .unwrap_or_default()
    }
}
