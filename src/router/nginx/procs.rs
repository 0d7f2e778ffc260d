//! What `/proc` says about nginx processes: a master's worker pids, whether a pid
//! still runs (both from [`crate::procs`]), and whether a worker is in its
//! graceful shutdown.
//!
//! nginx offers no API for "did the reload happen": its processes are the
//! evidence. After a successful reload the master has new worker children, and
//! the old ones retitle themselves "worker process is shutting down" and exit.

pub(crate) use crate::procs::{Pid, alive, children, title};

/// True when an nginx worker has started its graceful shutdown: it has closed its
/// listening sockets and idle connections and takes no new request.
pub(crate) fn is_shutting_down(pid: Pid) -> bool {
    title(pid).contains("shutting down")
}
