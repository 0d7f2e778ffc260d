//! A slot's traffic as its owner sees it: waiting for it to drain, and its
//! counters. (Installing routes is `Proxy::install`, in the crate root: it
//! binds preview listeners.)

use std::time::Duration;

use super::service::DrainReport;
use crate::Proxy;
use crate::pool::TrafficStats;
use crate::slot::Slot;

impl Proxy {
    /// Waits until nothing is in flight to `slot` of `service`, or `timeout`.
    /// Requests that started before the last `set_routes` moved away from it
    /// count, on every pool the slot has had.
    pub async fn drain(&self, service: &str, slot: Slot, timeout: Duration) -> DrainReport {
        let service = self.table.load().service(service).cloned();
        let Some(service) = service else {
            return DrainReport {
                remaining: 0,
                timed_out: false,
                waited: Duration::ZERO,
            };
        };
        let (remaining, waited) = service.slot_in_flight(slot).wait_idle(timeout).await;
        DrainReport {
            remaining,
            timed_out: remaining > 0,
            waited,
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
