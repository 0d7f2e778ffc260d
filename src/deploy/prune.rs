//! After a successful deploy: ask the runtime to remove builds (docker images) the
//! service ran before and that nothing can roll back to any more.
//!
//! Kept, across every service of the daemon: the builds of the last
//! `keep_images` successful actions of each service, every slot's recorded build,
//! the previous version's build, and whatever runs now. The runtime itself
//! refuses to remove a build that is still named (tagged) or used.

use std::collections::BTreeSet;

use super::context::ActionContext;
use super::flow::short_image;
use crate::slot::Slot;
use crate::state::{HistoryResult, StateFile};

impl ActionContext<'_> {
    /// Asks the runtime to remove the service's builds that nothing can roll
    /// back to any more; says what went.
    pub(super) async fn prune(&self) {
        let ActionContext {
            service,
            spec,
            progress,
            ..
        } = *self;
        let snapshot = self.state.snapshot();
        let mut keep = keep_set(&snapshot);
        for slot in Slot::ALL {
            if let Some(running) = service.running(slot) {
                keep.extend(running.instances.iter().filter_map(|i| i.image()));
            }
        }
        let candidates: Vec<String> = snapshot
            .services
            .get(&spec.name)
            .into_iter()
            .flat_map(|r| r.history.iter().filter_map(|e| e.image_id.clone()))
            .filter(|id| !keep.contains(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if candidates.is_empty() {
            return;
        }
        match self.runtime.prune(&candidates).await {
            Ok(removed) if removed.is_empty() => {}
            Ok(removed) => {
                let names: Vec<&str> = removed.iter().map(|id| short_image(id)).collect();
                progress.info(format!(
                    "pruned {} image(s) nothing can roll back to: {}",
                    removed.len(),
                    names.join(", ")
                ));
            }
            Err(e) => tracing::warn!(service = %spec.name, "pruning failed: {e}"),
        }
    }
}

/// The builds history may still roll back to, over every service.
fn keep_set(state: &StateFile) -> BTreeSet<String> {
    let mut keep = BTreeSet::new();
    for record in state.services.values() {
        let window = record.spec.runtime.keep_images();
        let mut recent: Vec<&String> = Vec::new();
        for entry in record.history.iter().rev() {
            if entry.result == HistoryResult::Failed {
                continue;
            }
            if let Some(id) = &entry.image_id
                && !recent.contains(&id)
            {
                if recent.len() == window {
                    break;
                }
                recent.push(id);
            }
        }
        keep.extend(recent.into_iter().cloned());
        keep.extend(record.previous_image_id.clone());
        for slot in Slot::ALL {
            keep.extend(record.slots.get(slot).image_id.clone());
        }
    }
    keep
}
