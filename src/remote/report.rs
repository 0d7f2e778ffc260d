//! Where remote progress goes: the CLI implements [`Reporter`] (lines prefixed
//! with the host, NDJSON with `--json`, progress bars for transfers).

use crate::api::wire::Event;

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
    /// Bytes sent so far.
    fn sent(&self, bytes: u64);
    /// The transfer ended (either way); `summary` says how.
    fn finish(&self, summary: &str);
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
    fn finish(&self, _: &str) {}
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
