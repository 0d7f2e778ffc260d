//! The persisted deploy lock of a service: who holds it, since when, why, and
//! when it lapses.
//!
//! The lock is a lease taken by a CLI for a whole (possibly multi-host, two-phase)
//! deploy and checked by the daemon on every action. It lives in `state.json`, on
//! the host, so it outlives both the CLI and a daemon restart. The holder renews
//! it while it runs; a holder that went away (killed, lost its connection) stops
//! renewing, and the lock lapses on its own at `lapses` (or at once with
//! `--force-unlock`). A lock an older teal took has no `lapses` and lasts until
//! released. Deciding who may act is `deploy/lock.rs`; this is only the record.

use std::time::{Duration, SystemTime};

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
    /// How long one renewal lasts, in milliseconds (None: until released).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// RFC 3339 UTC time (milliseconds) it lapses unless renewed before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lapses: Option<String>,
}

impl DeployLock {
    /// The lock as shown to someone who does not hold it (no lease).
    pub fn public(&self) -> DeployLock {
        DeployLock {
            lease: String::new(),
            ..self.clone()
        }
    }

    /// Moves `lapses` to one `ttl_ms` after `now` (nothing for a lock without one).
    pub fn renew(&mut self, now: SystemTime) {
        if let Some(ttl) = self.ttl_ms {
            let at = now + Duration::from_millis(ttl);
            self.lapses = Some(humantime::format_rfc3339_millis(at).to_string());
        }
    }

    /// Whether it lapsed by `now`: its holder stopped renewing it. A time that
    /// does not parse counts as not lapsed (the lock stays until forced).
    pub fn lapsed(&self, now: SystemTime) -> bool {
        self.lapses
            .as_deref()
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .is_some_and(|at| at <= now)
    }
}

impl std::fmt::Display for DeployLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} since {} ({})", self.owner, self.since, self.reason)?;
        if let Some(lapses) = &self.lapses {
            write!(f, ", lapsing at {lapses} unless its holder renews it")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_lapses_one_ttl_after_its_last_renewal() {
        let mut lock = DeployLock {
            owner: "alice@laptop".into(),
            reason: "teal deploy web 2.0.0".into(),
            since: "2026-12-05T20:00:00Z".into(),
            lease: "x".into(),
            ttl_ms: Some(1500),
            lapses: None,
        };
        let now = SystemTime::now();
        assert!(!lock.lapsed(now), "no time yet: held");
        lock.renew(now);
        assert!(!lock.lapsed(now + Duration::from_millis(1400)));
        assert!(lock.lapsed(now + Duration::from_millis(1600)));
        assert!(lock.to_string().contains("lapsing at "), "{lock}");
        let old = DeployLock {
            ttl_ms: None,
            lapses: None,
            ..lock
        };
        assert!(!old.lapsed(now + Duration::from_secs(86_400)));
    }
}
