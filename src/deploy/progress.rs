//! Progress of one action: NDJSON events for the caller and log lines for the daemon.

use std::time::Instant;

use tokio::sync::mpsc;

use crate::api::wire::{Event, Outcome, Step};
use crate::slot::Slot;

/// Where an action reports what it is doing. Cloning shares the clock.
#[derive(Debug, Clone)]
pub struct Progress {
    service: String,
    /// The caller's stream; a caller that went away is ignored, the action goes on.
    tx: Option<mpsc::UnboundedSender<Event>>,
    started: Instant,
}

impl Progress {
    pub fn new(service: &str, tx: Option<mpsc::UnboundedSender<Event>>) -> Self {
        Progress {
            service: service.to_string(),
            tx,
            started: Instant::now(),
        }
    }

    /// A sink that only logs (daemon-internal actions such as restore).
    pub fn silent(service: &str) -> Self {
        Progress::new(service, None)
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn step(&self, step: Step, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(service = %self.service, step = step.label(), "{message}");
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

    fn send(&self, event: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(event);
        }
    }
}
