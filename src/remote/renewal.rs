//! Keeping a fleet's deploy locks alive: while a multi-host action runs, the
//! lock it took on every host is renewed every third of its lease, so a long
//! health gate or a slow image transfer never loses it, and a CLI that dies
//! (SIGKILL, a lost laptop) stops renewing and its locks lapse on their own.
//!
//! It owns only the renewing task; taking and releasing the locks is `fleet.rs`.

use std::sync::Arc;
use std::time::Duration;

use super::report::Reporter;
use crate::api::client::Client;

/// The renewing task; stopped when this is dropped (before the locks are
/// released, so a renewal never races the release).
pub struct Renewal {
    task: tokio::task::JoinHandle<()>,
}

impl Renewal {
    /// Renews `service`'s lock through every `(host, client)` (each client
    /// carries its host's lease) every `lease / 3`. A failed renewal is
    /// reported once per failure and tried again at the next tick: the lock
    /// survives a failure or two; a lost one fails the next action instead.
    pub fn start(
        service: &str,
        hosts: Vec<(String, Client)>,
        lease: Duration,
        reporter: Arc<dyn Reporter>,
    ) -> Renewal {
        let service = service.to_string();
        let every = (lease / 3).max(Duration::from_millis(100));
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // The first tick is at once; the lock is fresh.
            loop {
                ticks.tick().await;
                let renewals = hosts.iter().map(|(name, client)| async {
                    if let Err(e) = client.renew_lock(&service).await {
                        reporter.note(
                            name,
                            &format!("could not renew the deploy lock of {service}: {e}"),
                        );
                    }
                });
                futures_util::future::join_all(renewals).await;
            }
        });
        Renewal { task }
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        self.task.abort();
    }
}
