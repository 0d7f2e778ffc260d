//! The access log: one JSON line per request, from both HTTP paths,
//! including the proxy's own answers (404, 502, 503, 504, 408, 308 ...).
//!
//! It never blocks a request. A request formats its line into its worker's
//! own buffer (a thread-local `Vec`: no lock, no allocation of its own); the
//! buffer goes to the writer thread through a bounded channel when it passes
//! `FLUSH_AT`, and at least every `FLUSH_EVERY` (a ticker task on each
//! worker, which also hands the rest over when the worker ends). When the
//! writer falls behind and the channel is full, the lines are dropped and
//! counted ([`AccessLog::dropped_lines`]), never waited for.
//!
//! The writer (`writer`) reopens its file when asked ([`AccessLog::reopen`],
//! the daemon's SIGUSR1: logrotate's move, then signal), and
//! [`AccessLog::close`] writes everything handed over and ends it. Request
//! ids (`request_id`) and the warnings for 502/504 (`failures`) live here
//! too; nothing here decides what a request gets.

pub(crate) mod failures;
mod line;
mod outcome;
pub(crate) mod request_id;
mod writer;

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

pub(crate) use line::Line;
pub(crate) use outcome::Outcome;
use writer::Message;

/// A worker's buffer goes to the writer once it holds this much.
const FLUSH_AT: usize = 32 * 1024;

/// A worker's buffer goes to the writer at least this often.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Buffers waiting for the writer; when full, lines are dropped.
const QUEUE: usize = 64;

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessTarget {
    Stdout,
    /// Appended to (created 0640 if missing); reopened by `reopen`.
    File(PathBuf),
}

/// Why the access log could not start.
#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    #[error("cannot open the access log {path}: {cause}")]
    Open {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot start the access log writer: {0}")]
    Thread(std::io::Error),
}

/// The access log of one proxy: give it to [`crate::ProxyOptions`].
pub struct AccessLog {
    /// To the writer thread. Workers only `try_send`.
    tx: SyncSender<Message>,
    /// Set by `reopen`; the writer looks at it before each write, so a
    /// reopen asked while the queue is full is not lost.
    reopen: Arc<AtomicBool>,
    /// Lines dropped because the writer was behind (or gone).
    dropped: AtomicU64,
    /// The writer thread, joined by `close`.
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("dropped", &self.dropped_lines())
            .finish_non_exhaustive()
    }
}

/// A worker's lines not yet handed to the writer.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    lines: u64,
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::default();
}

impl AccessLog {
    /// Opens `target` (a file now, so a bad path fails the start) and starts
    /// the writer thread.
    pub fn open(target: AccessTarget) -> Result<Arc<AccessLog>, AccessLogError> {
        let sink = writer::Sink::open(target)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let reopen = Arc::new(AtomicBool::new(false));
        let asked = Arc::clone(&reopen);
        let thread = std::thread::Builder::new()
            .name("teal-access-log".into())
            .spawn(move || writer::run(&rx, sink, &asked))
            .map_err(AccessLogError::Thread)?;
        Ok(Arc::new(AccessLog {
            tx,
            reopen,
            dropped: AtomicU64::new(0),
            writer: Mutex::new(Some(thread)),
        }))
    }

    /// Asks the writer to reopen its file before its next write (after
    /// logrotate moved it away). Never waits.
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Release);
        // Wakes an idle writer; a full queue means it is awake anyway.
        let _ = self.tx.try_send(Message::Wake);
    }

    /// Lines dropped so far because the writer fell behind.
    pub fn dropped_lines(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes what was handed over and ends the writer. Call it once the
    /// proxy has stopped (its workers hand their last lines over as they
    /// end); lines recorded later are dropped.
    pub async fn close(&self) {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        let tx = self.tx.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let _ = tx.send(Message::Close);
            if let Some(writer) = writer {
                let _ = writer.join();
            }
        })
        .await;
    }

    /// Adds `line` to this worker's buffer; hands the buffer over when it
    /// is big enough.
    pub(crate) fn record(&self, line: &Line<'_>) {
        let now = SystemTime::now();
        PENDING.with_borrow_mut(|pending| {
            line.write(now, &mut pending.bytes);
            pending.lines += 1;
            if pending.bytes.len() >= FLUSH_AT {
                self.hand_over(pending);
            }
        });
    }

    fn hand_over(&self, pending: &mut Pending) {
        let lines = std::mem::take(&mut pending.lines);
        let bytes = std::mem::replace(&mut pending.bytes, Vec::with_capacity(FLUSH_AT));
        if self.tx.try_send(Message::Lines(bytes)).is_err() {
            self.dropped.fetch_add(lines, Ordering::Relaxed);
        }
    }

    /// Hands this worker's buffer over, if it holds anything.
    fn flush_local(&self) {
        let _ = PENDING.try_with(|pending| {
            if let Ok(mut pending) = pending.try_borrow_mut()
                && !pending.bytes.is_empty()
            {
                self.hand_over(&mut pending);
            }
        });
    }

    /// Runs on each worker for the proxy's life: hands the worker's buffer
    /// over every `FLUSH_EVERY`, and a last time when the worker's runtime
    /// drops it.
    pub(crate) async fn tick(self: Arc<Self>) {
        struct FlushOnDrop(Arc<AccessLog>);
        impl Drop for FlushOnDrop {
            fn drop(&mut self) {
                self.0.flush_local();
            }
        }
        let log = FlushOnDrop(self);
        let mut every = tokio::time::interval(FLUSH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            log.0.flush_local();
        }
    }
}
