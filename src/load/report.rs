//! What the load client counted: the live tally and the report made from it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use teal_histogram::Histogram;

/// Every outcome so far. `sent == ok + failed()` once the load has stopped;
/// while it runs, the difference is the requests in flight.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadReport {
    /// Requests started (each one is exactly one outcome once it finishes).
    pub sent: u64,
    /// 2xx answers whose whole body was read.
    pub ok: u64,
    /// Non-2xx answers by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Transport errors by kind: "refused", "reset", "incomplete", "timeout",
    /// "closed" (the connection closed before the request went out), "tls handshake: ...",
    /// "other: ...".
    pub errors: BTreeMap<String, u64>,
    /// The `"version"` field of 2xx JSON answers; "(none)" when there was none.
    pub versions: BTreeMap<String, u64>,
    /// Latency of requests that got an HTTP answer, from a bounded histogram
    /// (within about 3%); the maximum is exact to the microsecond.
    #[serde(with = "crate::spec::humantime_serde")]
    pub latency_p50: Duration,
    #[serde(with = "crate::spec::humantime_serde")]
    pub latency_p99: Duration,
    #[serde(with = "crate::spec::humantime_serde")]
    pub latency_max: Duration,
    /// Connections the keep-alive workers opened: one each, plus one per
    /// connection the server closed or broke under them (a reconnection).
    #[serde(default)]
    pub keepalive_connects: u64,
    /// TLS connections whose handshake resumed an earlier session.
    #[serde(default)]
    pub tls_resumed: u64,
    /// Time since the load started (until it stopped, in a final report).
    #[serde(with = "crate::spec::humantime_serde")]
    pub elapsed: Duration,
}

/// Key under which 2xx answers without a `"version"` are counted.
pub const NO_VERSION: &str = "(none)";

impl LoadReport {
    /// Requests that did not end in a fully read 2xx answer.
    pub fn failed(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.errors.values().sum::<u64>()
    }

    /// A human summary, one outcome per line.
    pub fn render_table(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let rate = if self.elapsed.is_zero() {
            0.0
        } else {
            self.sent as f64 / self.elapsed.as_secs_f64()
        };
        rows.push((
            "sent".into(),
            format!(
                "{}  ({rate:.0}/s over {:.1}s)",
                self.sent,
                self.elapsed.as_secs_f64()
            ),
        ));
        rows.push(("ok".into(), self.ok.to_string()));
        for (version, count) in &self.versions {
            rows.push((format!("  version {version}"), count.to_string()));
        }
        rows.push(("failed".into(), self.failed().to_string()));
        for (status, count) in &self.statuses {
            rows.push((format!("  status {status}"), count.to_string()));
        }
        for (kind, count) in &self.errors {
            rows.push((format!("  error {kind}"), count.to_string()));
        }
        rows.push((
            "latency p50/p99/max".into(),
            format!(
                "{} / {} / {}",
                millis(self.latency_p50),
                millis(self.latency_p99),
                millis(self.latency_max)
            ),
        ));
        let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
        let mut table = String::new();
        for (label, value) in rows {
            let _ = writeln!(table, "{label:<width$}  {value}");
        }
        table
    }
}

fn millis(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

/// One finished request.
#[derive(Debug)]
pub(super) enum Outcome {
    Ok {
        version: Option<String>,
        latency: Duration,
    },
    Status {
        status: u16,
        latency: Duration,
    },
    Error(ErrorKind),
}

/// Why a request got no usable answer. Classified from typed errors only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ErrorKind {
    Refused,
    Reset,
    /// The connection ended before the whole response (head or body) arrived.
    Incomplete,
    Timeout,
    /// The connection was already closed when the request was handed to it.
    Closed,
    /// TLS refused the connection (the certificate, the name, the protocols).
    Handshake(String),
    Other(String),
}

impl ErrorKind {
    fn key(&self) -> String {
        match self {
            ErrorKind::Refused => "refused".into(),
            ErrorKind::Reset => "reset".into(),
            ErrorKind::Incomplete => "incomplete".into(),
            ErrorKind::Timeout => "timeout".into(),
            ErrorKind::Closed => "closed".into(),
            ErrorKind::Handshake(what) => format!("tls handshake: {what}"),
            ErrorKind::Other(what) => format!("other: {what}"),
        }
    }
}

/// The outcomes counted so far (everything but `sent`, which is an atomic budget).
#[derive(Debug, Default)]
pub(super) struct Tally {
    ok: u64,
    statuses: BTreeMap<u16, u64>,
    errors: BTreeMap<String, u64>,
    versions: BTreeMap<String, u64>,
    latency: Histogram,
}

impl Tally {
    pub fn record(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok { version, latency } => {
                self.ok += 1;
                let version = version.unwrap_or_else(|| NO_VERSION.to_owned());
                *self.versions.entry(version).or_default() += 1;
                self.latency.record(latency);
            }
            Outcome::Status { status, latency } => {
                *self.statuses.entry(status).or_default() += 1;
                self.latency.record(latency);
            }
            Outcome::Error(kind) => *self.errors.entry(kind.key()).or_default() += 1,
        }
    }

    pub fn report(&self, sent: u64, elapsed: Duration) -> LoadReport {
        LoadReport {
            sent,
            ok: self.ok,
            statuses: self.statuses.clone(),
            errors: self.errors.clone(),
            versions: self.versions.clone(),
            latency_p50: self.latency.quantile(0.50).unwrap_or_default(),
            latency_p99: self.latency.quantile(0.99).unwrap_or_default(),
            latency_max: self.latency.max(),
            keepalive_connects: 0,
            tls_resumed: 0,
            elapsed,
        }
    }
}
