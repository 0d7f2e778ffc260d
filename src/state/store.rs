//! Loading and atomically saving `state.json`, under an exclusive lock on the
//! state directory.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::dir_lock::{LockError, StateLock};
use super::record::{FORMAT, StateFile};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: corrupt state file: {error}", path.display())]
    Corrupt {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("{}: state format {found} is newer than this teal understands ({FORMAT})", path.display())]
    TooNew { path: PathBuf, found: u32 },
    #[error("another teal daemon holds the state directory {} (lock file {})", dir.display(), lock.display())]
    Locked { dir: PathBuf, lock: PathBuf },
}

fn locked(dir: &Path, lock: &Path, error: LockError) -> StateError {
    match error {
        LockError::Io(error) => StateError::Io {
            path: lock.to_path_buf(),
            error,
        },
        LockError::Held => StateError::Locked {
            dir: dir.to_path_buf(),
            lock: lock.to_path_buf(),
        },
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |error| StateError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// The state directory, locked for this process for as long as the `Store` lives.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    file: PathBuf,
    /// Held, never read (but handed over in an upgrade): the flock is
    /// released when the Store is dropped, unless it was handed over.
    lock: StateLock,
}

impl Store {
    /// Creates the directory if needed, takes the lock and returns the store.
    pub fn open(dir: &Path) -> Result<Store, StateError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join("lock");
        let lock = StateLock::take(&lock_path).map_err(|e| locked(dir, &lock_path, e))?;
        Ok(Store::with(dir, lock))
    }

    /// Opens the store with the lock a predecessor daemon handed over (`fd`,
    /// its open lock file), instead of taking it.
    pub fn open_inherited(dir: &Path, fd: OwnedFd) -> Result<Store, StateError> {
        let lock_path = dir.join("lock");
        let lock = StateLock::inherit(&lock_path, fd).map_err(|e| locked(dir, &lock_path, e))?;
        Ok(Store::with(dir, lock))
    }

    fn with(dir: &Path, lock: StateLock) -> Store {
        Store {
            dir: dir.to_path_buf(),
            file: dir.join("state.json"),
            lock,
        }
    }

    /// A copy of the lock (its open file) for a successor daemon.
    pub fn lock_copy(&self) -> std::io::Result<OwnedFd> {
        self.lock.copy()
    }

    /// The successor took the lock over: this store no longer releases it
    /// when dropped (the process exiting closes its copy, unlocking nothing).
    pub fn keep_lock_for_successor(&self) {
        self.lock.keep_for_successor();
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the saved state; an absent file is an empty state.
    pub fn load(&self) -> Result<StateFile, StateError> {
        read(&self.file)
    }

    /// Writes `state` atomically: temp file, fsync, rename, fsync of the directory.
    pub fn save(&self, state: &StateFile) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|error| StateError::Corrupt {
            path: self.file.clone(),
            error,
        })?;
        write_atomic(&self.file, &bytes)
    }
}

/// Reads a state file without taking the lock (for inspection tools and tests).
pub fn read(path: &Path) -> Result<StateFile, StateError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StateFile::default()),
        Err(e) => return Err(io(path)(e)),
    };
    let state: StateFile = serde_json::from_slice(&bytes).map_err(|error| StateError::Corrupt {
        path: path.to_path_buf(),
        error,
    })?;
    if state.format > FORMAT {
        return Err(StateError::TooNew {
            path: path.to_path_buf(),
            found: state.format,
        });
    }
    Ok(state)
}

/// temp file (created afresh, 0600) → fsync → rename → fsync dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("json.tmp");
    // A temp file left by a crash may have any mode, which opening it would
    // keep: start afresh, so the file renamed into place is always 0600.
    let _ = fs::remove_file(&tmp);
    {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io(path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}
