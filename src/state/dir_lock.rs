//! The state directory's lock: an exclusive `flock` on `state_dir/lock`, held
//! by one daemon at a time, and handed to the next daemon in an upgrade.
//!
//! A `flock` belongs to the open file, not to the process: a copy of the
//! descriptor passed to the successor (SCM_RIGHTS) holds the same lock. So
//! the handing daemon must not unlock on its way out (dropping a `Flock`
//! unlocks the open file for every holder); once handed, its copy is only
//! closed when the process ends, and the lock stays with the successor.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Mutex;

use nix::fcntl::{Flock, FlockArg};

/// The lock, held for as long as this lives (or, once handed, until the
/// process ends).
#[derive(Debug)]
pub(super) struct StateLock {
    /// None only during drop.
    flock: Mutex<Option<Flock<File>>>,
    /// Set by `keep_for_successor`: do not unlock on drop.
    handed: std::sync::atomic::AtomicBool,
}

/// Why the lock could not be had.
pub(super) enum LockError {
    Io(std::io::Error),
    /// Another daemon holds it.
    Held,
}

impl StateLock {
    /// Takes the lock on `path`, creating the file.
    pub(super) fn take(path: &Path) -> Result<StateLock, LockError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(LockError::Io)?;
        StateLock::hold(file)
    }

    /// The lock a predecessor handed over: `fd` must be its open lock file
    /// for `path` (the same file on disk), which already holds the lock.
    pub(super) fn inherit(path: &Path, fd: OwnedFd) -> Result<StateLock, LockError> {
        let file = File::from(fd);
        let on_disk = std::fs::metadata(path).map_err(LockError::Io)?;
        let handed = file.metadata().map_err(LockError::Io)?;
        if (on_disk.dev(), on_disk.ino()) != (handed.dev(), handed.ino()) {
            return Err(LockError::Io(std::io::Error::other(
                "the descriptor handed over is not this state directory's lock file",
            )));
        }
        // The same open file already holds it: this succeeds at once.
        let lock = StateLock::hold(file)?;
        // Unlocking it would unlock the predecessor's copy too (the same open
        // file): should this daemon fail before it serves, the predecessor
        // keeps the lock. It goes when the last copy closes.
        lock.keep_for_successor();
        Ok(lock)
    }

    fn hold(file: File) -> Result<StateLock, LockError> {
        let flock =
            Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| LockError::Held)?;
        Ok(StateLock {
            flock: Mutex::new(Some(flock)),
            handed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A copy of the locked file's descriptor, for a successor.
    pub(super) fn copy(&self) -> std::io::Result<OwnedFd> {
        let flock = self.flock.lock().unwrap_or_else(|e| e.into_inner());
        let Some(flock) = flock.as_ref() else {
            return Err(std::io::Error::other("the state lock is gone"));
        };
        flock.as_fd().try_clone_to_owned()
    }

    /// The successor holds a copy and serves: from now on dropping this does
    /// not unlock.
    pub(super) fn keep_for_successor(&self) {
        self.handed.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let flock = self.flock.lock().unwrap_or_else(|e| e.into_inner()).take();
        if self.handed.load(std::sync::atomic::Ordering::SeqCst) {
            // Unlocking would unlock the successor's copy too: the descriptor
            // stays open until the process exits, which releases nothing.
            std::mem::forget(flock);
        }
    }
}
