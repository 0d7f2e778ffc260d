//! The deploy lock of a service: a lease with owner and time, persisted on the
//! host (see `state/lock.rs`), taken by a CLI for a whole deploy and checked
//! before every action. It sits above the in-memory action lock of `service.rs`:
//! that one keeps two actions from running at once, this one keeps a second
//! deployer out between the stage and the switch of a two-phase deploy.

use std::time::SystemTime;

use super::{DeployError, Deployer};
use crate::state::{DeployLock, HistoryEntry};
use crate::wire::{LockGrant, LockRequest};

impl Deployer {
    /// Takes the deploy lock of `name`. A lock someone else holds is refused,
    /// unless `force`, which breaks it (and reports what it broke).
    pub fn lock(&self, name: &str, req: LockRequest) -> Result<LockGrant, DeployError> {
        let lock = DeployLock {
            owner: req.owner,
            reason: req.reason,
            since: HistoryEntry::timestamp(SystemTime::now()),
            lease: new_lease(),
        };
        let granted = lock.clone();
        self.state
            .update(move |s| match s.locks.get(name) {
                Some(held) if !req.force => Err(DeployError::Locked {
                    service: name.to_string(),
                    lock: held.public(),
                }),
                _ => Ok(s.locks.insert(name.to_string(), lock).map(|l| l.public())),
            })
            .map_err(DeployError::State)?
            .map(|broke| LockGrant {
                lock: granted,
                broke,
            })
    }

    /// Releases the lock of `name` if `lease` holds it (or any lock with `force`).
    /// Releasing a lock that is not there is not an error.
    pub fn unlock(
        &self,
        name: &str,
        lease: Option<&str>,
        force: bool,
    ) -> Result<Option<DeployLock>, DeployError> {
        self.state
            .update(|s| match s.locks.get(name) {
                None => Ok(None),
                Some(held) if force || lease == Some(held.lease.as_str()) => {
                    Ok(s.locks.remove(name).map(|l| l.public()))
                }
                Some(held) => Err(DeployError::Locked {
                    service: name.to_string(),
                    lock: held.public(),
                }),
            })
            .map_err(DeployError::State)?
    }

    /// An action on `name` may go ahead: the service is not locked, or `lease`
    /// is the lock's.
    pub fn check_lease(&self, name: &str, lease: Option<&str>) -> Result<(), DeployError> {
        match self.state.snapshot().locks.get(name) {
            Some(held) if lease != Some(held.lease.as_str()) => Err(DeployError::Locked {
                service: name.to_string(),
                lock: held.public(),
            }),
            _ => Ok(()),
        }
    }

    /// The lock on `name` as others see it.
    pub fn lock_of(&self, name: &str) -> Option<DeployLock> {
        self.state
            .snapshot()
            .locks
            .get(name)
            .map(DeployLock::public)
    }
}

/// A lease: unguessable enough to tell holders apart (not a security boundary:
/// whoever can reach the control socket can also force the lock).
fn new_lease() -> String {
    use std::hash::{BuildHasher, Hasher};
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    format!("{:016x}{:08x}", hasher.finish(), nanos as u32)
}
