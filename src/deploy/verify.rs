//! Post-switch verification: watching the new slot through the router for the
//! verify window while the previous slot stays warm, judging it, and switching
//! production back when it fails.
//!
//! The router counts and, on an error-budget crossing, switches back by itself at
//! once (see `router/watch.rs`); this file judges everything else (latency, the
//! end of the window, too few requests) on a bounded tick, and makes any switch
//! back official: routes, state, history, and the bad slot drained and stopped.

use std::time::{Duration, Instant};

use super::switch::Previous;
use super::{Attempt, DeployError, Deployer, Progress, Service, stop_instances};
use crate::api::wire::Step;
use crate::router::{Watch, WindowStats};
use crate::slot::{Slot, SlotState};
use crate::spec::{Inconclusive, ServiceSpec, VerifySpec};
use crate::state::{HistoryResult, Verdict, VerifyRecord};

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

impl Deployer {
    /// Watches `slot` for `spec.window` (or until a threshold is crossed) and judges it.
    pub(super) async fn verify_window(
        &self,
        spec: &VerifySpec,
        watch: &Watch,
        slot: Slot,
        progress: &Progress,
    ) -> Judged {
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

    /// Production back to the previous slot after a failure past the switch:
    /// routes, state and history as before the deploy (but for the entry, which
    /// records the failure), then the new slot drained and stopped. Returns the
    /// error the action ends with. `watch`, when armed, gives the final figures
    /// of the window once the new slot has drained.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn switch_back(
        &self,
        service: &Service,
        spec: &ServiceSpec,
        attempt: &Attempt,
        previous: &Previous,
        reason: String,
        judged: Option<Judged>,
        watch: Option<Watch>,
        progress: &Progress,
    ) -> DeployError {
        let (to, from) = (previous.slot, attempt.slot);
        let version = previous.running.version.clone();
        progress.step(
            Step::SwitchBack,
            format!("production → {to} ({version}): {reason}"),
        );
        let routed = self
            .router
            .set_routes(
                &previous.record.spec,
                Some(previous.running.backend(to)),
                None,
            )
            .await
            .map_err(DeployError::Route);
        if let Err(e) = routed {
            progress.fail_step(e.to_string());
            let mut entry = attempt.entry_in(HistoryResult::Live, Some(reason.clone()), progress);
            entry.verify = judged.map(|j| j.record);
            self.finish_entry(spec, entry);
            return DeployError::SwitchBackFailed {
                reason,
                version,
                source: Box::new(e),
            };
        }
        service.set_state(to, SlotState::Live);
        service.set_state(from, SlotState::Starting);
        let before = &previous.record;
        let saved = self.state.update(|s| {
            if let Some(rec) = s.services.get_mut(&spec.name) {
                rec.spec = before.spec.clone();
                rec.active_slot = Some(to);
                rec.previous_version = before.previous_version.clone();
                rec.previous_image_id = before.previous_image_id.clone();
                rec.slots.get_mut(to).state = SlotState::Live;
                rec.slots.get_mut(from).state = SlotState::Stopped;
            }
        });
        if let Err(e) = saved {
            tracing::error!(service = %spec.name, "could not record the switch back: {e}");
        }
        progress.note(format!("back on {version}"));

        progress.step(
            Step::Drain,
            format!(
                "draining {from} ({}), up to {}",
                attempt.version,
                humantime::format_duration(spec.drain.timeout)
            ),
        );
        self.router
            .drain(&spec.name, from, spec.drain.timeout)
            .await;
        progress.step(
            Step::Retire,
            format!("stopping {from} ({})", attempt.version),
        );
        if let Some(running) = service.set_running(from, None) {
            stop_instances(&running.instances, super::STOP_GRACE).await;
        }

        let mut record = judged.map(|j| j.record);
        if let (Some(record), Some(watch)) = (record.as_mut(), watch.as_ref()) {
            // Every request the new slot took, now that none is in flight.
            let last = watch.counters().snapshot();
            record.requests = last.requests;
            record.errors = last.errors;
            record.upstream_failures = last.upstream_failures;
            progress.info(format!(
                "the new slot answered {} of {} request(s) with an error before production went back",
                last.errors, last.requests
            ));
        }
        drop(watch);
        let mut entry = attempt.entry_in(HistoryResult::Failed, Some(reason.clone()), progress);
        entry.verify = record;
        self.finish_entry(spec, entry);
        DeployError::RolledBack { reason, version }
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
