//! Versioned on-disk state: which slot of each service is live, at which version,
//! the spec it was deployed with, and its history.
//!
//! Only this module writes files in `state_dir` besides instance logs
//! (`state.json`, and `processes.json`: the process instances that may still run). Every save is
//! atomic (temp file, fsync, rename, fsync dir), so a crash leaves either the old or
//! the new state, never a torn one. A lock file keeps two daemons off one state dir.

mod cell;
mod dir_lock;
mod gate;
mod lock;
mod processes;
mod record;
mod secrets;
mod store;

pub use cell::StateCell;
pub use gate::{
    GateChange, Gates, MAINTENANCE_RETRY_AFTER, Maintenance, PAUSE_RETRY_AFTER, PAUSE_TIMEOUT,
    Pause,
};
pub use lock::DeployLock;
pub use processes::{ProcessBook, ProcessRecord};
pub use record::{
    Action, HistoryEntry, HistoryResult, ServiceRecord, SlotRecord, SlotRecords, StateFile,
    TimelineStep, Verdict, VerifyRecord,
};
pub use secrets::{STORE_DIR, SecretStatus, SecretStore};
pub use store::{StateError, Store, read, write_atomic};
