//! Proxy worker threads: one single-threaded tokio runtime per thread, each
//! accepting on its own socket of the listen address (SO_REUSEPORT, see
//! `client::listener::bind`) and serving its connections start to end, as nginx
//! worker processes do with `reuseport`.
//!
//! A request and the upstream connection that serves it stay on one thread: the
//! client connection's task, its upstream connection and the idle stack
//! lane they meet in (see `upstream::idle::IdleStack`) all belong to the worker that
//! accepted the client. Nothing on the request path wakes another thread. The
//! control plane (deploys, health checks, the control API) runs on the daemon's
//! own runtime and only touches the proxy through lock-free pointers.
//!
//! Stop order: the proxy's shutdown ends the accept loops and connections;
//! `Workers::stop` then ends each thread's runtime (dropping whatever task is
//! left) and joins the threads.

use std::cell::Cell;
use std::io;
use std::sync::Mutex;
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

thread_local! {
    /// This thread's lane: 1 + its index on a proxy worker thread, 0 elsewhere.
    static LANE: Cell<usize> = const { Cell::new(0) };
}

/// The lane of the calling thread: 1..=workers on a worker thread, 0 on any
/// other thread (the daemon's runtime, tests). Idle stacks keep one lane each.
pub(crate) fn current_lane() -> usize {
    LANE.with(Cell::get)
}

/// The proxy's worker threads.
pub(crate) struct Workers {
    handles: Vec<Handle>,
    /// Ends every worker's runtime.
    stop: CancellationToken,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Workers {
    /// Starts `count` (at least one) worker threads, each with its own runtime.
    pub(crate) fn start(count: usize) -> io::Result<Workers> {
        let stop = CancellationToken::new();
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        for index in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let stopped = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("teal-proxy-{index}"))
                .spawn(move || {
                    LANE.with(|lane| lane.set(index + 1));
                    runtime.block_on(stopped.cancelled());
                    // Dropping the runtime drops the tasks still on it.
                    drop(runtime);
                });
            match thread {
                Ok(thread) => threads.push(thread),
                Err(error) => {
                    stop.cancel();
                    join(threads);
                    return Err(error);
                }
            }
        }
        Ok(Workers {
            handles,
            stop,
            threads: Mutex::new(threads),
        })
    }

    /// One runtime handle per worker.
    pub(crate) fn handles(&self) -> &[Handle] {
        &self.handles
    }

    pub(crate) fn len(&self) -> usize {
        self.handles.len()
    }

    /// Ends every worker's runtime and waits for the threads, unless called
    /// from a worker thread itself (then they are only told to end).
    pub(crate) async fn stop(&self) {
        self.stop.cancel();
        if current_lane() != 0 {
            return;
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = tokio::task::spawn_blocking(move || join(threads)).await;
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // A proxy dropped without `wait_closed` (tests) must not leak threads.
        self.stop.cancel();
    }
}

fn join(threads: Vec<JoinHandle<()>>) {
    for thread in threads {
        let _ = thread.join();
    }
}
