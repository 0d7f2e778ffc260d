//! The in-memory state, kept identical to what is on disk.

use std::sync::Mutex;

use super::record::StateFile;
use super::store::{StateError, Store};

/// The state file and its in-memory copy. `update` saves before it commits to
/// memory, so a failed save leaves both exactly as they were.
#[derive(Debug)]
pub struct StateCell {
    store: Store,
    /// Guards the copy; held only for a clone or a save, never across an await.
    current: Mutex<StateFile>,
}

impl StateCell {
    pub fn open(store: Store) -> Result<StateCell, StateError> {
        let current = store.load()?;
        Ok(StateCell {
            store,
            current: Mutex::new(current),
        })
    }

    pub fn snapshot(&self) -> StateFile {
        self.lock().clone()
    }

    /// Applies `change` to a copy, saves it atomically, then makes it current.
    pub fn update<T>(&self, change: impl FnOnce(&mut StateFile) -> T) -> Result<T, StateError> {
        let mut guard = self.lock();
        let mut next = guard.clone();
        let out = change(&mut next);
        self.store.save(&next)?;
        *guard = next;
        Ok(out)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StateFile> {
        // A panic while holding the lock cannot leave a half-applied change
        // (changes are applied to a copy), so the poison flag carries no meaning.
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}
