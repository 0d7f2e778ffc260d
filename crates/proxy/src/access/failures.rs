//! Every 502 and 504 the proxy gives is said at warn level (the daemon's
//! default) with its cause, whether or not there is an access log:
//! at most `PER_SECOND` lines a second, and the count of those left out
//! is said with the next one, so a flood cannot fill the disk.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::ProxyError;
use crate::pool::Pool;

/// Warnings said per second at most.
const PER_SECOND: u64 = 10;

/// The second the counts below are for.
static WINDOW: AtomicU64 = AtomicU64::new(0);
/// Warnings said in `WINDOW`.
static SAID: AtomicU64 = AtomicU64::new(0);
/// Warnings left out since the last one said.
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

/// Says that a request to `pool` (on `instance`, once one was picked) got
/// `error`'s 502 or 504; other statuses are not the upstream's and are
/// left to the access log.
pub(crate) fn upstream_failed(error: &ProxyError, pool: &Pool, instance: Option<SocketAddr>) {
    let status = error.status().as_u16();
    if status != 502 && status != 504 {
        return;
    }
    if !admit() {
        return;
    }
    let suppressed = SUPPRESSED.swap(0, Ordering::Relaxed);
    let label = &pool.label;
    let instance = instance.map(|addr| addr.to_string()).unwrap_or_default();
    tracing::warn!(
        status,
        service = %label.service,
        slot = %label.slot,
        %instance,
        cause = %error,
        suppressed,
        "upstream failed"
    );
}

/// Whether one more warning may be said this second; counts it if not.
fn admit() -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let window = WINDOW.load(Ordering::Relaxed);
    if window != now
        && WINDOW
            .compare_exchange(window, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        SAID.store(0, Ordering::Relaxed);
    }
    if SAID.fetch_add(1, Ordering::Relaxed) < PER_SECOND {
        true
    } else {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        false
    }
}
