//! The live side of one service: which instances run in which slot, and the lock
//! that keeps actions on the service one at a time.

use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::router::Backend;
use crate::runtime::InstanceRef;
use crate::slot::{Slot, SlotState};

/// The instances of one slot that this daemon started.
#[derive(Debug, Clone)]
pub struct RunningSlot {
    pub version: String,
    pub state: SlotState,
    pub deploy_id: String,
    pub instances: Vec<InstanceRef>,
}

impl RunningSlot {
    pub fn backend(&self, slot: Slot) -> Backend {
        Backend {
            slot,
            version: self.version.clone(),
            addrs: self.instances.iter().map(|i| i.addr()).collect(),
        }
    }
}

/// One service as the daemon runs it.
#[derive(Debug)]
pub struct Service {
    pub name: String,
    /// Serializes deploy, promote and rollback. Taken with `try_lock` so a second
    /// action fails at once with "deploy in progress" instead of queueing.
    action: Arc<AsyncMutex<()>>,
    /// What runs in each slot. A std mutex: held only to read or replace entries,
    /// never across an await.
    running: Mutex<[Option<RunningSlot>; 2]>,
}

/// Proof that the caller holds the service's action lock.
#[derive(Debug)]
pub struct ActionGuard {
    _guard: OwnedMutexGuard<()>,
}

impl Service {
    pub fn new(name: &str) -> Self {
        Service {
            name: name.to_string(),
            action: Arc::new(AsyncMutex::new(())),
            running: Mutex::new([None, None]),
        }
    }

    /// Takes the action lock, or returns None when another action holds it.
    pub fn try_begin(&self) -> Option<ActionGuard> {
        self.action
            .clone()
            .try_lock_owned()
            .ok()
            .map(|g| ActionGuard { _guard: g })
    }

    pub fn busy(&self) -> bool {
        self.action.try_lock().is_err()
    }

    pub fn running(&self, slot: Slot) -> Option<RunningSlot> {
        self.slots()[index(slot)].clone()
    }

    pub fn set_running(&self, slot: Slot, value: Option<RunningSlot>) -> Option<RunningSlot> {
        std::mem::replace(&mut self.slots()[index(slot)], value)
    }

    pub fn set_state(&self, slot: Slot, state: SlotState) {
        if let Some(r) = self.slots()[index(slot)].as_mut() {
            r.state = state;
        }
    }

    /// Every instance of both slots (for shutdown).
    pub fn all_instances(&self) -> Vec<InstanceRef> {
        self.slots()
            .iter()
            .flatten()
            .flat_map(|r| r.instances.iter().cloned())
            .collect()
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, [Option<RunningSlot>; 2]> {
        // Entries are replaced whole, so a poisoned lock holds consistent data.
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn index(slot: Slot) -> usize {
    match slot {
        Slot::Blue => 0,
        Slot::Green => 1,
    }
}
