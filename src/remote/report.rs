//! Where remote progress goes: the CLI implements [`Reporter`] (lines prefixed
//! with the host, NDJSON with `--json`, progress bars for transfers).

use std::time::Duration;

use crate::wire::Event;

pub trait Reporter: Send + Sync {
    /// A line about what teal itself does on `host` (connect, install, start).
    fn note(&self, host: &str, message: &str);
    /// An event from the daemon on `host`.
    fn event(&self, host: &str, event: &Event);
    /// A transfer of `total` bytes (when known) to `host` begins.
    fn transfer(&self, host: &str, what: &str, total: Option<u64>) -> Box<dyn Transfer>;
}

/// One transfer's progress.
pub trait Transfer: Send {
    /// Bytes done so far, in the unit of the `total` given at the start (for a
    /// compressed transfer: bytes before compression, whose total is known).
    fn sent(&self, bytes: u64);
    /// The transfer ended, either way.
    fn finish(&self, end: &TransferEnd);
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TransferEnd {
    /// Everything arrived (and was checked).
    Done {
        /// Bytes that went over ssh.
        sent: u64,
        /// Bytes before compression, for a compressed transfer.
        raw: Option<u64>,
        elapsed: Duration,
    },
    Failed,
}

impl TransferEnd {
    /// "sent 12.3 MB (zstd; 45.6 MB raw) in 2.1s", or "failed".
    pub fn summary(&self) -> String {
        match self {
            TransferEnd::Done {
                sent,
                raw: Some(raw),
                elapsed,
            } => format!(
                "sent {} (zstd; {} raw) in {:.1}s",
                bytes(*sent),
                bytes(*raw),
                elapsed.as_secs_f64()
            ),
            TransferEnd::Done {
                sent,
                raw: None,
                elapsed,
            } => format!("sent {} in {:.1}s", bytes(*sent), elapsed.as_secs_f64()),
            TransferEnd::Failed => "failed".to_string(),
        }
    }
}

/// A reporter that drops everything (tests, library callers).
pub struct Quiet;

impl Reporter for Quiet {
    fn note(&self, _: &str, _: &str) {}
    fn event(&self, _: &str, _: &Event) {}
    fn transfer(&self, _: &str, _: &str, _: Option<u64>) -> Box<dyn Transfer> {
        Box::new(Quiet)
    }
}

impl Transfer for Quiet {
    fn sent(&self, _: u64) {}
    fn finish(&self, _: &TransferEnd) {}
}

/// `bytes` for people: "1.5 MB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
