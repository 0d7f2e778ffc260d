//! What an accept loop does when `accept` fails, one rule for every listener
//! teal has: the proxy's, and (through the main crate) the admin listener's
//! and the control socket's.
//!
//! A connection that failed on its way in (reset or aborted before it was
//! accepted) is skipped at once. Anything else, above all running out of file
//! descriptors (EMFILE, ENFILE) or kernel memory (ENOBUFS, ENOMEM), pauses
//! the loop for [`ACCEPT_PAUSE`]: the listening socket stays readable while
//! the queue is full, so accepting again at once would spin a core and starve
//! the connections that could free descriptors. nginx pauses its accept
//! events the same way (`accept_mutex_delay`, 500 ms). The warning is said
//! at most once per [`WARN_EVERY`], with the number of failures in between.
//!
//! This module does not accept anything itself: each loop keeps its own
//! listener and stop signal and only asks how long to wait.

use std::io;
use std::time::{Duration, Instant};

use nix::errno::Errno;

/// How long an accept loop waits after running out of a resource.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Shortest time between two warnings of one accept loop.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// One accept loop's memory of its failures (for the rate-limited warning).
#[derive(Debug)]
pub struct AcceptPause {
    /// The listener, as the warning names it ("proxy", "admin", ...).
    listener: &'static str,
    /// When the last warning was said.
    warned_at: Option<Instant>,
    /// Failures since then, said with the next warning.
    unsaid: u64,
}

impl AcceptPause {
    pub fn new(listener: &'static str) -> AcceptPause {
        AcceptPause {
            listener,
            warned_at: None,
            unsaid: 0,
        }
    }

    /// After `accept` failed with `error`: how long to wait before accepting
    /// again (zero: at once, the failure was one connection's).
    pub fn after(&mut self, error: &io::Error) -> Duration {
        if one_connection(error) {
            tracing::debug!(listener = self.listener, %error, "a connection failed before it was accepted");
            return Duration::ZERO;
        }
        let now = Instant::now();
        let due = self
            .warned_at
            .is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
        if due {
            tracing::warn!(
                listener = self.listener,
                %error,
                failures_since_last_warning = self.unsaid,
                "accept failed: pausing this listener for {} ms (raise the open-files limit if it says too many open files)",
                ACCEPT_PAUSE.as_millis()
            );
            self.warned_at = Some(now);
            self.unsaid = 0;
        } else {
            self.unsaid += 1;
        }
        ACCEPT_PAUSE
    }
}

/// True for an error that concerns only the connection being accepted, not
/// the listener or the process.
fn one_connection(error: &io::Error) -> bool {
    match error.raw_os_error().map(Errno::from_raw) {
        Some(
            Errno::ECONNABORTED
            | Errno::ECONNRESET
            | Errno::EPROTO
            | Errno::EPERM
            | Errno::EINTR
            | Errno::EAGAIN,
        ) => true,
        Some(_) => false,
        None => matches!(
            error.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::Interrupted
                | io::ErrorKind::WouldBlock
        ),
    }
}

#[cfg(test)]
mod tests;
