//! Post-switch verification: watching the new slot through the router for the
//! verify window while the previous slot stays warm, and judging it.
//!
//! The router counts and, on an error-budget crossing, switches back by itself at
//! once (see `router/watch.rs`); this file judges everything else (latency, the
//! end of the window, too few requests) on a bounded tick. Making a switch back
//! official is `switch_back.rs`; deciding when to watch is `switch.rs`.

use std::time::{Duration, Instant};

use super::Progress;
use super::context::ActionContext;
use crate::router::{Watch, WindowStats};
use crate::spec::{Inconclusive, VerifySpec};
use crate::state::{Verdict, VerifyRecord};
use crate::wire::Step;

/// Bounds of the tick on which a window is judged between trips.
const TICK_MIN: Duration = Duration::from_millis(20);
const TICK_MAX: Duration = Duration::from_millis(250);

/// A window's verdict, and whether it sends production back.
#[derive(Debug, Clone)]
pub(super) struct Judged {
    pub record: VerifyRecord,
    pub rollback: bool,
}

impl Judged {
    /// A verify record for a window that did not run (said on the progress).
    pub fn skipped(reason: &str, progress: &Progress) -> Judged {
        progress.info(format!("verify skipped: {reason}"));
        Judged {
            record: VerifyRecord {
                verdict: Verdict::Skipped,
                requests: 0,
                errors: 0,
                upstream_failures: 0,
                p99_ms: None,
                watched_ms: 0,
                reason: Some(reason.to_string()),
            },
            rollback: false,
        }
    }

    /// Why production must go back, when it must.
    pub fn rollback_reason(&self) -> Option<String> {
        self.rollback.then(|| {
            format!(
                "verify failed: {}",
                self.record.reason.as_deref().unwrap_or("threshold crossed")
            )
        })
    }
}

impl ActionContext<'_> {
    /// Watches the attempt's slot for `spec.window` (or until a threshold is
    /// crossed) and judges it.
    pub(super) async fn verify_window(&self, spec: &VerifySpec, watch: &Watch) -> Judged {
        let (slot, progress) = (self.attempt.slot, self.progress);
        let p99 = spec
            .max_p99
            .map(|d| format!(", p99 ≤ {}", humantime::format_duration(d)))
            .unwrap_or_default();
        progress.step(
            Step::Verify,
            format!(
                "watching {slot} for {}: errors ≤ {}{p99}, at least {} request(s)",
                humantime::format_duration(spec.window),
                percent(spec.max_error_rate),
                spec.min_requests
            ),
        );
        let counters = watch.counters();
        let started = Instant::now();
        let deadline = started + spec.window;
        let tick = (spec.window / 20).clamp(TICK_MIN, TICK_MAX);
        // Bounded: each pass waits for a tick (or a trip), and the deadline ends it.
        let (stats, failure, interrupted) = loop {
            let stats = counters.snapshot();
            if let Some(reason) = failure(spec, &stats) {
                break (stats, Some(reason), false);
            }
            let now = Instant::now();
            if now >= deadline {
                break (stats, None, false);
            }
            tokio::select! {
                _ = counters.wait_tripped() => {}
                _ = tokio::time::sleep(tick.min(deadline - now)) => {}
                _ = self.shutdown.cancelled() => break (counters.snapshot(), None, true),
            }
        };
        let watched = started.elapsed();
        let (verdict, reason, rollback) = match failure {
            Some(reason) => (Verdict::Failed, Some(reason), true),
            None if interrupted || stats.requests < spec.min_requests => {
                let why = if interrupted {
                    "the daemon is stopping".to_string()
                } else {
                    format!(
                        "inconclusive: {} request(s) in {}, fewer than min_requests = {}",
                        stats.requests,
                        humantime::format_duration(Duration::from_millis(
                            watched.as_millis() as u64
                        )),
                        spec.min_requests
                    )
                };
                let fail = spec.on_inconclusive == Inconclusive::Fail && !interrupted;
                (Verdict::Inconclusive, Some(why), fail)
            }
            None => (Verdict::Passed, None, false),
        };
        let record = record(verdict, &stats, watched, reason);
        let summary = summary(&record);
        if rollback {
            progress.fail_step(summary.clone());
        } else {
            progress.note(summary.clone());
        }
        progress.info(format!("verify {summary}"));
        Judged { record, rollback }
    }
}

/// Why the window fails now, if it does.
fn failure(spec: &VerifySpec, stats: &WindowStats) -> Option<String> {
    let budget = crate::router::ErrorBudget {
        max_error_rate: spec.max_error_rate,
        min_requests: spec.min_requests,
    };
    if stats.tripped || budget.crossed(stats.errors, stats.requests) {
        return Some(format!(
            "error rate {} over {} request(s) ({} failed; max {})",
            percent(stats.error_rate()),
            stats.requests,
            stats.errors,
            percent(spec.max_error_rate)
        ));
    }
    let max = spec.max_p99?;
    if stats.completed < spec.min_requests.max(1) {
        return None;
    }
    let p99 = stats.latency.quantile(0.99)?;
    (p99 > max).then(|| {
        format!(
            "p99 {} over {} request(s) (max {})",
            millis(p99),
            stats.completed,
            millis(max)
        )
    })
}

fn record(
    verdict: Verdict,
    stats: &WindowStats,
    watched: Duration,
    reason: Option<String>,
) -> VerifyRecord {
    VerifyRecord {
        verdict,
        requests: stats.requests,
        errors: stats.errors,
        upstream_failures: stats.upstream_failures,
        p99_ms: stats
            .latency
            .quantile(0.99)
            .map(|d| (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0),
        watched_ms: watched.as_millis() as u64,
        reason,
    }
}

/// "passed: 0 of 534 request(s) failed, p99 3.2ms", or the verdict and its reason,
/// for progress and the timeline.
fn summary(record: &VerifyRecord) -> String {
    let verdict = match record.verdict {
        Verdict::Passed => "passed",
        Verdict::Failed => "failed",
        Verdict::Inconclusive => "inconclusive",
        Verdict::Skipped => "skipped",
    };
    if let Some(reason) = &record.reason {
        let reason = reason.strip_prefix("inconclusive: ").unwrap_or(reason);
        return format!("{verdict}: {reason}");
    }
    let p99 = record
        .p99_ms
        .map(|ms| format!(", p99 {ms}ms"))
        .unwrap_or_default();
    format!(
        "{verdict}: {} of {} request(s) failed{p99}",
        record.errors, record.requests
    )
}

fn percent(share: f64) -> String {
    let value = share * 100.0;
    if value.fract() == 0.0 {
        format!("{value:.0}%")
    } else {
        format!("{value:.1}%")
    }
}

fn millis(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}
