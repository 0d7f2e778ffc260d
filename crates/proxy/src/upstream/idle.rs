//! A small per-endpoint stack of idle upstream connections for reuse, one
//! lane per worker thread.
//!
//! Idle connections expire after `idle_timeout`, kept below the apps' own
//! keep-alive timeout so the proxy never reuses a connection the app is about
//! to close. This module does not decide which endpoint to use, nor when to
//! retry.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// An idle upstream connection that can tell, without waiting, whether it can
/// still take a request.
pub(crate) trait Reusable {
    fn is_reusable(&mut self) -> bool;
}

struct Idle<T> {
    conn: T,
    since: Instant,
}

/// Idle connections of one endpoint: one stack per worker thread (lane), newest
/// last, so a connection is reused by the worker whose event loop drives it.
/// A lane's lock is the only lock on the request path, taken for a push or a
/// pop, never across an await, and only ever contended by a pool clear.
pub(crate) struct IdleStack<T> {
    lanes: Box<[Lane<T>]>,
}

/// One worker's stack, alone on its cache lines: lanes side by side would
/// share one, and every push or pop on one worker would take it from the
/// other's cache.
#[repr(align(128))]
struct Lane<T>(Mutex<VecDeque<Idle<T>>>);

impl<T: Reusable> IdleStack<T> {
    pub(crate) fn new(lanes: usize) -> IdleStack<T> {
        IdleStack {
            lanes: (0..lanes.max(1)).map(|_| Lane(Mutex::default())).collect(),
        }
    }

    /// The calling thread's lane.
    fn lane(&self) -> &Mutex<VecDeque<Idle<T>>> {
        let lane = crate::workers::current_lane().min(self.lanes.len() - 1);
        &self.lanes[lane].0
    }

    /// The newest idle connection of this thread's lane that is still fresh
    /// and ready, if any.
    pub(crate) fn take(&self, idle_timeout: Duration) -> Option<T> {
        let now = Instant::now();
        let mut stale = Vec::new();
        let found = {
            let Ok(mut conns) = self.lane().lock() else {
                return None;
            };
            loop {
                let Some(mut idle) = conns.pop_back() else {
                    break None;
                };
                if now.saturating_duration_since(idle.since) > idle_timeout {
                    // Everything below is older still.
                    stale.push(idle);
                    stale.extend(conns.drain(..));
                    break None;
                }
                if idle.conn.is_reusable() {
                    break Some(idle.conn);
                }
                stale.push(idle);
            }
        };
        // Closing happens outside the lock.
        drop(stale);
        found
    }

    /// Keeps `conn` for reuse on this thread's lane; drops the oldest when
    /// `max` are already kept there.
    pub(crate) fn put(&self, conn: T, idle_timeout: Duration, max: usize) {
        let now = Instant::now();
        let mut evicted = Vec::new();
        if let Ok(mut conns) = self.lane().lock() {
            while let Some(oldest) = conns.front() {
                if conns.len() >= max || now.saturating_duration_since(oldest.since) > idle_timeout
                {
                    evicted.extend(conns.pop_front());
                } else {
                    break;
                }
            }
            if max > 0 {
                conns.push_back(Idle { conn, since: now });
            }
        }
        drop(evicted);
    }

    pub(crate) fn clear(&self) {
        for lane in self.lanes.iter() {
            let all = match lane.0.lock() {
                Ok(mut conns) => std::mem::take(&mut *conns),
                Err(_) => continue,
            };
            drop(all);
        }
    }
}
