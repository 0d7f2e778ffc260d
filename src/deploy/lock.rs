//! The deploy lock of a service: a lease with owner and time, persisted on the
//! host (see `state/lock.rs`), taken by a CLI for a whole deploy, renewed by it
//! while it runs, and checked before every action. A lock its holder stopped
//! renewing has lapsed: it is treated as absent, and the next taker replaces it.
//! It sits above the in-memory action lock of `service.rs`: that one keeps two
//! actions from running at once, this one keeps a second deployer out between
//! the stage and the switch of a two-phase deploy.

use std::time::{Duration, SystemTime};

use super::{DeployError, Deployer};
use crate::state::{DeployLock, HistoryEntry};
use crate::wire::{LockGrant, LockRequest};

/// The shortest and longest time a lock may last between renewals.
const TTL_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(500)..=Duration::from_secs(24 * 3600);

impl Deployer {
    /// Takes the deploy lock of `name`. A lock someone else holds is refused,
    /// unless `force`, which breaks it (and reports what it broke), or unless it
    /// lapsed (reported too).
    pub fn lock(&self, name: &str, req: LockRequest) -> Result<LockGrant, DeployError> {
        if let Some(ttl) = req.ttl_ms.map(Duration::from_millis)
            && !TTL_RANGE.contains(&ttl)
        {
            return Err(DeployError::Invalid(format!(
                "a deploy lock's lease must be between {} and {}, not {}",
                humantime::format_duration(*TTL_RANGE.start()),
                humantime::format_duration(*TTL_RANGE.end()),
                humantime::format_duration(ttl)
            )));
        }
        let now = SystemTime::now();
        let mut lock = DeployLock {
            owner: req.owner,
            reason: req.reason,
            since: HistoryEntry::timestamp(now),
            lease: new_lease(),
            ttl_ms: req.ttl_ms,
            lapses: None,
        };
        lock.renew(now);
        let granted = lock.clone();
        self.state
            .update(move |s| match s.locks.get(name) {
                Some(held) if !req.force && !held.lapsed(now) => Err(DeployError::Locked {
                    service: name.to_string(),
                    lock: Box::new(held.public()),
                }),
                _ => Ok(s.locks.insert(name.to_string(), lock).map(|l| l.public())),
            })
            .map_err(DeployError::State)?
            .map(|replaced| {
                let (broke, lapsed) = match replaced {
                    Some(old) if old.lapsed(now) => (None, Some(old)),
                    other => (other, None),
                };
                LockGrant {
                    lock: granted,
                    broke,
                    lapsed,
                }
            })
    }

    /// Renews the lock of `name` held with `lease`: it lapses one lease time
    /// from now. A lock that lapsed but that nobody replaced is renewed too (its
    /// holder is alive after all); one that someone else holds, or none, is an
    /// error: the holder lost it.
    pub fn renew_lock(&self, name: &str, lease: Option<&str>) -> Result<DeployLock, DeployError> {
        let now = SystemTime::now();
        self.state
            .update(|s| match s.locks.get_mut(name) {
                Some(held) if lease == Some(held.lease.as_str()) => {
                    held.renew(now);
                    Ok(held.public())
                }
                Some(held) => Err(DeployError::Locked {
                    service: name.to_string(),
                    lock: Box::new(held.public()),
                }),
                None => Err(DeployError::Invalid(format!(
                    "service {name:?} is not locked any more (its lock was released, or it lapsed and was replaced)"
                ))),
            })
            .map_err(DeployError::State)?
    }

    /// Releases the lock of `name` if `lease` holds it (or any lock with `force`,
    /// or one that lapsed). Releasing a lock that is not there is not an error.
    pub fn unlock(
        &self,
        name: &str,
        lease: Option<&str>,
        force: bool,
    ) -> Result<Option<DeployLock>, DeployError> {
        let now = SystemTime::now();
        self.state
            .update(|s| match s.locks.get(name) {
                None => Ok(None),
                Some(held) if force || lease == Some(held.lease.as_str()) || held.lapsed(now) => {
                    Ok(s.locks.remove(name).map(|l| l.public()))
                }
                Some(held) => Err(DeployError::Locked {
                    service: name.to_string(),
                    lock: Box::new(held.public()),
                }),
            })
            .map_err(DeployError::State)?
    }

    /// An action on `name` may go ahead: the service is not locked, its lock
    /// lapsed, or `lease` is the lock's.
    pub fn check_lease(&self, name: &str, lease: Option<&str>) -> Result<(), DeployError> {
        match self.state.snapshot().locks.get(name) {
            Some(held) if lease != Some(held.lease.as_str()) && !held.lapsed(SystemTime::now()) => {
                Err(DeployError::Locked {
                    service: name.to_string(),
                    lock: Box::new(held.public()),
                })
            }
            _ => Ok(()),
        }
    }

    /// The lock on `name` as others see it (none once it lapsed).
    pub fn lock_of(&self, name: &str) -> Option<DeployLock> {
        self.state
            .snapshot()
            .locks
            .get(name)
            .filter(|l| !l.lapsed(SystemTime::now()))
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
