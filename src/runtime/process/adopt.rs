//! Taking over what an earlier daemon left running: adopting a live slot's
//! processes without a restart, and stopping every recorded process that no slot
//! of this daemon accounts for.
//!
//! A record is trusted only as far as the kernel confirms it: the pid must still
//! name the process that was started (same start time in `/proc`), and an adopted
//! process must still accept connections on its port (the caller then health-gates
//! it). A pid that now belongs to another process is none of teal's business: its
//! record is dropped and the process left alone.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use super::pid::{self, ExitWatch};
use super::{ProcessInstance, ProcessRuntime, ROLLBACK_GRACE, runnable};
use crate::runtime::{Instance, InstanceRef, KnownSlot, RuntimeError, SlotRequest};
use crate::state::ProcessRecord;

/// Grace for a leftover process, or an adopted one that stopped listening.
const LEFTOVER_GRACE: Duration = Duration::from_secs(10);

impl ProcessRuntime {
    /// See [`Runtime::adopt`](crate::runtime::Runtime::adopt): each instance of the
    /// live slot is adopted when its recorded process still runs and listens, and
    /// started again otherwise.
    pub(super) async fn adopt_slot(
        &self,
        req: SlotRequest<'_>,
    ) -> Result<Vec<InstanceRef>, RuntimeError> {
        let (command, workdir) = runnable(req.service)?;
        let service = &req.service.name;
        let records = self.book.records();
        // (instance, adopted): on failure adopted ones are let go of, new ones stopped.
        let mut instances: Vec<(Arc<ProcessInstance>, bool)> = Vec::new();
        for index in 0..req.service.instances {
            let record = records.iter().find(|r| {
                &r.service == service
                    && r.slot == req.slot
                    && r.index == index
                    && r.version == req.version
                    && r.deploy_id == req.deploy_id
            });
            let adopted = match record {
                Some(record) => {
                    self.adopt_one(&req, command, workdir.as_deref(), record)
                        .await
                }
                None => None,
            };
            if let Some(instance) = adopted {
                instances.push((instance, true));
                continue;
            }
            match self.start_one(&req, command, workdir.as_deref(), index, false) {
                Ok(instance) => {
                    tracing::info!(%service, slot = %req.slot, index, pid = instance.pid(), "live instance was not running; started it again");
                    instances.push((instance, false));
                }
                Err(e) => {
                    join_all(instances.iter().map(|(i, adopted)| async move {
                        if *adopted {
                            i.release(ROLLBACK_GRACE).await;
                        } else {
                            i.stop(ROLLBACK_GRACE).await;
                        }
                    }))
                    .await;
                    return Err(e);
                }
            }
        }
        let instances: Vec<_> = instances.into_iter().map(|(i, _)| i).collect();
        self.track(&instances);
        Ok(instances.into_iter().map(|i| i as InstanceRef).collect())
    }

    /// Takes over the recorded process when it still runs and listens; a process
    /// that runs without listening is stopped. None when it cannot be adopted.
    async fn adopt_one(
        &self,
        req: &SlotRequest<'_>,
        command: &[String],
        workdir: Option<&std::path::Path>,
        record: &ProcessRecord,
    ) -> Option<Arc<ProcessInstance>> {
        let (service, pid) = (&record.service, record.pid);
        // The pidfd first: if the start time still matches after it is open, it
        // watches the recorded process and no other.
        let watch = ExitWatch::open(pid).ok();
        if pid::start_time(pid) != Some(record.start_time) {
            tracing::info!(%service, slot = %record.slot, index = record.index, pid, "the recorded live instance is gone");
            self.forget(pid);
            return None;
        }
        let Some(watch) = watch else {
            tracing::warn!(%service, pid, "cannot watch the recorded live instance (pidfd_open failed); stopping it");
            pid::terminate_foreign(pid, record.start_time, LEFTOVER_GRACE).await;
            self.forget(pid);
            return None;
        };
        if !pid::accepts(record.port).await {
            tracing::warn!(%service, pid, port = record.port, "the recorded live instance does not accept connections on its port; stopping it");
            pid::terminate_foreign(pid, record.start_time, LEFTOVER_GRACE).await;
            self.forget(pid);
            return None;
        }
        tracing::info!(%service, slot = %record.slot, index = record.index, pid, port = record.port, "adopted the running live instance without a restart");
        self.ports.lock().unwrap().hold(record.port);
        let launch = self.launch(req, command, workdir, record.index, record.port);
        Some(ProcessInstance::adopt(
            launch,
            pid,
            watch,
            self.ports.clone(),
            self.book.clone(),
        ))
    }

    /// See [`Runtime::reconcile`](crate::runtime::Runtime::reconcile): every
    /// recorded process of `service` that runs is either one of this daemon's
    /// known slots or stopped; records of processes that are gone are dropped.
    pub(super) async fn remove_leftovers(&self, service: &str, known: &[KnownSlot]) -> Vec<String> {
        let tracked = self.live_tracked();
        let records: Vec<ProcessRecord> = self
            .book
            .records()
            .into_iter()
            .filter(|r| r.service == service)
            .collect();
        let actions = records.iter().map(|r| {
            let wanted = known
                .iter()
                .any(|k| k.slot == r.slot && k.deploy_id == r.deploy_id);
            let ours = tracked.iter().find(|i| i.pid() == r.pid).cloned();
            async move {
                let what = format!(
                    "pid {} ({} slot, version {}, deploy {})",
                    r.pid, r.slot, r.version, r.deploy_id
                );
                match ours {
                    Some(_) if wanted => None,
                    Some(instance) => {
                        instance.stop(LEFTOVER_GRACE).await;
                        Some(format!(
                            "stopped instance {what}: not part of the recorded state"
                        ))
                    }
                    None if pid::start_time(r.pid) == Some(r.start_time) => {
                        pid::terminate_foreign(r.pid, r.start_time, LEFTOVER_GRACE).await;
                        self.forget(r.pid);
                        Some(format!(
                            "stopped leftover process {what}: not part of the recorded state"
                        ))
                    }
                    None => {
                        // Gone, or its pid is another process's now: not ours to touch.
                        self.forget(r.pid);
                        None
                    }
                }
            }
        });
        join_all(actions).await.into_iter().flatten().collect()
    }

    fn forget(&self, pid: u32) {
        if let Err(e) = self.book.forget(pid) {
            tracing::error!(pid, "could not drop a process record: {e}");
        }
    }
}
