//! Rendering remote progress: every line prefixed with its host, NDJSON with a
//! `host` field under `--json`, and a progress bar (bytes, rate, ETA) per
//! transfer on a terminal. Progress goes to stderr; `--json` events to stdout.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::remote::{Reporter, Transfer, TransferEnd};
use crate::wire::{Event, Outcome};

pub struct HostView {
    json: bool,
    /// Set on a terminal: bars and lines share it so lines never cut a bar.
    bars: Option<MultiProgress>,
}

impl HostView {
    pub fn new(json: bool) -> HostView {
        let bars = (!json && std::io::stderr().is_terminal()).then(MultiProgress::new);
        HostView { json, bars }
    }

    /// One line of progress on stderr.
    pub fn line(&self, line: &str) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    /// One NDJSON object on stdout.
    pub fn json_line(&self, value: &serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}");
        let _ = out.flush();
    }

    pub fn is_json(&self) -> bool {
        self.json
    }
}

impl Reporter for HostView {
    fn note(&self, host: &str, message: &str) {
        if self.json {
            self.json_line(&serde_json::json!({"host": host, "event": "note", "message": message}));
        } else {
            self.line(&format!("{host}: {message}"));
        }
    }

    fn event(&self, host: &str, event: &Event) {
        if self.json {
            let mut value = serde_json::to_value(event).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert("host".into(), host.into());
            }
            self.json_line(&value);
            return;
        }
        let line = match event {
            Event::Step {
                step,
                message,
                elapsed_ms,
            } => format!(
                "{host}: [{:>7}] {:<11} {message}",
                secs(*elapsed_ms),
                step.label()
            ),
            Event::Info {
                message,
                elapsed_ms,
            } => format!("{host}: [{:>7}]             {message}", secs(*elapsed_ms)),
            Event::Done {
                outcome,
                message,
                elapsed_ms,
                ..
            } => {
                let mark = if *outcome == Outcome::Failed {
                    "✗"
                } else {
                    "✓"
                };
                format!("{host}: [{:>7}] {mark} {message}", secs(*elapsed_ms))
            }
        };
        self.line(&line);
    }

    fn transfer(&self, host: &str, what: &str, total: Option<u64>) -> Box<dyn Transfer> {
        if self.json {
            self.json_line(&serde_json::json!({"host": host, "event": "transfer", "what": what, "bytes": total}));
        }
        let bar = self.bars.as_ref().map(|bars| {
            let bar = match total {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::new_spinner(),
            };
            let template = match total {
                Some(_) => {
                    "{prefix}: {msg} [{bar:24}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} ETA {eta}"
                }
                None => "{prefix}: {msg} {spinner} {decimal_bytes} {decimal_bytes_per_sec}",
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(host.to_string());
            bar.set_message(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bars.add(bar)
        });
        Box::new(TransferView {
            host: host.to_string(),
            what: what.to_string(),
            json: self.json,
            bar,
            last_event: Mutex::new(None),
        })
    }
}

struct TransferView {
    host: String,
    what: String,
    json: bool,
    bar: Option<ProgressBar>,
    /// When the last `progress` event went out under `--json` (at most one a second).
    last_event: Mutex<Option<Instant>>,
}

/// How often `--json` reports a transfer's progress.
const JSON_PROGRESS_EVERY: Duration = Duration::from_secs(1);

impl Transfer for TransferView {
    fn sent(&self, n: u64) {
        if let Some(bar) = &self.bar {
            if bar.length().is_some_and(|len| n > len) {
                bar.set_length(n);
            }
            bar.set_position(n);
        }
        if self.json {
            let mut last = self.last_event.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|at| at.elapsed() >= JSON_PROGRESS_EVERY) {
                *last = Some(Instant::now());
                let value = serde_json::json!({"host": self.host, "event": "progress", "what": self.what, "bytes": n});
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{value}");
                let _ = out.flush();
            }
        }
    }

    fn finish(&self, end: &TransferEnd) {
        let summary = end.summary();
        match &self.bar {
            Some(bar) => {
                if let TransferEnd::Done { .. } = end {
                    // The total given at the start may have been an estimate.
                    bar.set_length(bar.position());
                }
                bar.finish_with_message(format!("{} {summary}", self.what));
            }
            None if self.json => {
                let mut value = serde_json::json!({
                    "host": self.host,
                    "event": "transferred",
                    "what": self.what,
                    "ok": !matches!(end, TransferEnd::Failed),
                    "summary": summary,
                });
                if let TransferEnd::Done { sent, raw, elapsed } = end {
                    value["sent_bytes"] = (*sent).into();
                    value["raw_bytes"] = raw.unwrap_or(*sent).into();
                    value["elapsed_ms"] = (elapsed.as_millis() as u64).into();
                }
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{value}");
                let _ = out.flush();
            }
            None => eprintln!("{}: {}: {summary}", self.host, self.what),
        }
    }
}

fn secs(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}
