//! Progress of one action: NDJSON events for the caller, log lines for the daemon,
//! and the action's timeline (every step with its start and duration) for history.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use crate::slot::Slot;
use crate::state::TimelineStep;
use crate::wire::{Event, Outcome, Step};

/// Where an action reports what it is doing. Cloning shares the clock and the
/// timeline.
#[derive(Debug, Clone)]
pub struct Progress {
    service: String,
    /// The caller's stream; a caller that went away is ignored, the action goes on.
    tx: Option<mpsc::UnboundedSender<Event>>,
    started: Instant,
    /// Wall-clock time at `started`, for the timeline's timestamps.
    started_at: SystemTime,
    /// Steps so far; the last one is still running. Locked only to push or read.
    timeline: Arc<Mutex<Vec<Open>>>,
}

/// A timeline step as recorded while the action runs.
#[derive(Debug, Clone)]
struct Open {
    step: Step,
    offset: Duration,
    failed: bool,
    note: Option<String>,
}

impl Progress {
    pub fn new(service: &str, tx: Option<mpsc::UnboundedSender<Event>>) -> Self {
        Progress {
            service: service.to_string(),
            tx,
            started: Instant::now(),
            started_at: SystemTime::now(),
            timeline: Arc::default(),
        }
    }

    /// A sink that only logs (daemon-internal actions such as restore).
    pub fn silent(service: &str) -> Self {
        Progress::new(service, None)
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A step began (and the previous one ended).
    pub fn step(&self, step: Step, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(service = %self.service, step = step.label(), "{message}");
        self.steps().push(Open {
            step,
            offset: self.started.elapsed(),
            failed: false,
            note: None,
        });
        self.send(Event::Step {
            step,
            message,
            elapsed_ms: self.elapsed_ms(),
        });
    }

    pub fn info(&self, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(service = %self.service, "{message}");
        self.send(Event::Info {
            message,
            elapsed_ms: self.elapsed_ms(),
        });
    }

    /// Notes what came of the current step, for the timeline.
    pub fn note(&self, note: impl Into<String>) {
        if let Some(last) = self.steps().last_mut() {
            last.note = Some(note.into());
        }
    }

    /// Marks the current step as the one that failed, with why.
    pub fn fail_step(&self, note: impl Into<String>) {
        if let Some(last) = self.steps().last_mut() {
            last.failed = true;
            last.note = Some(note.into());
        }
    }

    /// The steps so far, the current one ending now.
    pub fn timeline(&self) -> Vec<TimelineStep> {
        let now = self.started.elapsed();
        let steps = self.steps();
        let ends = steps.iter().skip(1).map(|s| s.offset).chain([now]);
        steps
            .iter()
            .zip(ends)
            .map(|(s, end)| TimelineStep {
                step: s.step.label().to_string(),
                at: humantime::format_rfc3339_millis(self.started_at + s.offset).to_string(),
                offset_ms: s.offset.as_millis() as u64,
                duration_ms: (end.as_millis() as u64).saturating_sub(s.offset.as_millis() as u64),
                failed: s.failed,
                note: s.note.clone(),
            })
            .collect()
    }

    pub fn done(
        &self,
        outcome: Outcome,
        version: Option<String>,
        slot: Option<Slot>,
        message: impl Into<String>,
    ) {
        let message = message.into();
        match outcome {
            Outcome::Failed => tracing::warn!(service = %self.service, "failed: {message}"),
            _ => tracing::info!(service = %self.service, "{message}"),
        }
        self.send(Event::Done {
            outcome,
            service: self.service.clone(),
            version,
            slot,
            message,
            elapsed_ms: self.elapsed_ms(),
        });
    }

    fn steps(&self) -> std::sync::MutexGuard<'_, Vec<Open>> {
        // Steps are pushed whole; a poisoned lock still holds a consistent list.
        self.timeline.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, event: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_ends_where_the_next_begins() {
        let p = Progress::silent("web");
        p.step(Step::Prepare, "a");
        p.step(Step::PreDeploy, "b");
        p.fail_step("exit code 1");
        let t = p.timeline();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].step, "prepare");
        assert_eq!(t[0].offset_ms + t[0].duration_ms, t[1].offset_ms);
        assert!(t[1].failed);
        assert_eq!(t[1].note.as_deref(), Some("exit code 1"));
        assert!(
            t[0].at.ends_with('Z') && t[0].at.contains('.'),
            "{}",
            t[0].at
        );
    }
}
