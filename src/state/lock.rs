//! The persisted deploy lock of a service: who holds it, since when, and why.
//!
//! The lock is a lease taken by a CLI for a whole (possibly multi-host, two-phase)
//! deploy and checked by the daemon on every action. It lives in `state.json`, on
//! the host, so it outlives both the CLI and a daemon restart; a holder that went
//! away leaves it until someone passes `--force-unlock`. Deciding who may act is
//! `deploy/lock.rs`; this is only the record.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployLock {
    /// Who took it, e.g. "alice@laptop".
    pub owner: String,
    /// What for, e.g. "teal deploy web 1.2.0".
    pub reason: String,
    /// RFC 3339 UTC time it was taken.
    pub since: String,
    /// The secret the holder proves itself with; empty in views shown to others.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lease: String,
}

impl DeployLock {
    /// The lock as shown to someone who does not hold it (no lease).
    pub fn public(&self) -> DeployLock {
        DeployLock {
            lease: String::new(),
            ..self.clone()
        }
    }
}

impl std::fmt::Display for DeployLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} since {} ({})", self.owner, self.since, self.reason)
    }
}
