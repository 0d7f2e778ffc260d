//! `processes.json`: every process-runtime instance that may still run, so that a
//! daemon started after another one (stopped, or killed) finds them again.
//!
//! A record is written when a process starts (its pid and start time, its port,
//! service, slot, index, version and deploy), replaced when the supervisor
//! restarts it, and removed when it is stopped for good or found gone. Whether a
//! record's process is adopted or stopped is the process runtime's business; this
//! file only keeps the list, with the same atomic save as `state.json`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::store::{StateError, write_atomic};
use crate::slot::Slot;

/// One process instance as it was started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub service: String,
    pub slot: Slot,
    /// 0-based position inside the slot.
    pub index: usize,
    pub version: String,
    /// The deploy that started the slot (`SlotRecord::deploy_id`).
    pub deploy_id: String,
    /// The process, also its process group and session (it leads both).
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks after boot). With the pid it
    /// names one process: a pid reused by another process has another start time.
    pub start_time: u64,
    /// The loopback port it listens on.
    pub port: u16,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ProcessFile {
    #[serde(default)]
    processes: Vec<ProcessRecord>,
}

/// The records and their file. Like [`StateCell`](super::StateCell), `update`
/// saves before it changes the in-memory copy.
#[derive(Debug)]
pub struct ProcessBook {
    path: PathBuf,
    /// Held only for a clone or a save, never across an await.
    current: Mutex<Vec<ProcessRecord>>,
}

impl ProcessBook {
    /// Loads `dir/processes.json` (absent: no records), creating `dir`. The
    /// caller holds the state-dir lock (a daemon) or is alone on the directory.
    pub fn open(dir: &Path) -> Result<ProcessBook, StateError> {
        std::fs::create_dir_all(dir).map_err(|error| StateError::Io {
            path: dir.to_path_buf(),
            error,
        })?;
        let path = dir.join("processes.json");
        let records = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<ProcessFile>(&bytes)
                    .map_err(|error| StateError::Corrupt {
                        path: path.clone(),
                        error,
                    })?
                    .processes
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(StateError::Io { path, error }),
        };
        Ok(ProcessBook {
            path,
            current: Mutex::new(records),
        })
    }

    pub fn records(&self) -> Vec<ProcessRecord> {
        self.lock().clone()
    }

    /// Applies `change` to a copy, saves it atomically, then makes it current.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut Vec<ProcessRecord>) -> T,
    ) -> Result<T, StateError> {
        let mut guard = self.lock();
        let mut next = ProcessFile {
            processes: guard.clone(),
        };
        let out = change(&mut next.processes);
        let bytes = serde_json::to_vec_pretty(&next).map_err(|error| StateError::Corrupt {
            path: self.path.clone(),
            error,
        })?;
        write_atomic(&self.path, &bytes)?;
        *guard = next.processes;
        Ok(out)
    }

    /// Records a started process, replacing the record of the pid it follows (a
    /// restart), if any.
    pub fn started(&self, record: ProcessRecord, replaces: Option<u32>) -> Result<(), StateError> {
        self.update(|all| {
            all.retain(|r| Some(r.pid) != replaces && r.pid != record.pid);
            all.push(record);
        })
    }

    /// Forgets the record of `pid` (stopped for good, or gone).
    pub fn forget(&self, pid: u32) -> Result<(), StateError> {
        if !self.lock().iter().any(|r| r.pid == pid) {
            return Ok(());
        }
        self.update(|all| all.retain(|r| r.pid != pid))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ProcessRecord>> {
        // Changes are applied to a copy, so a poisoned lock still guards a whole list.
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests;
