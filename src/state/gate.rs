//! A service's maintenance and pause as persisted in its record (`teal
//! maintenance`, `teal pause`), and how one change applies to them. Which
//! request gets what is the router's business; this is only the record.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `Retry-After` of a maintenance 503 unless `--retry-after` says otherwise.
pub const MAINTENANCE_RETRY_AFTER: u32 = 60;
/// `Retry-After` of a paused request's 503 (its time ran out) by default.
pub const PAUSE_RETRY_AFTER: u32 = 5;
/// How long a paused request is held by default.
pub const PAUSE_TIMEOUT: Duration = Duration::from_secs(30);

/// What stands in front of a service's production traffic. Empty: nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gates {
    /// At most one per host, and one for the whole service (`host` None).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintenance: Vec<Maintenance>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pause: Vec<Pause>,
}

/// Every request (of `host`, when set) gets 503.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// RFC 3339 UTC.
    pub since: String,
    /// `--message`; None: the default text (or the service's 503 page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Seconds.
    pub retry_after: u32,
}

/// New requests (of `host`, when set) are held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// RFC 3339 UTC.
    pub since: String,
    /// How long one request is held before it gets 503.
    pub timeout_ms: u64,
    /// Seconds, for that 503.
    pub retry_after: u32,
}

/// One change, as the control API carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum GateChange {
    MaintenanceOn {
        host: Option<String>,
        message: Option<String>,
        retry_after: Option<u32>,
    },
    /// `host` None: every maintenance of the service ends.
    MaintenanceOff { host: Option<String> },
    Pause {
        host: Option<String>,
        timeout_ms: Option<u64>,
        retry_after: Option<u32>,
    },
    /// `host` None: every pause of the service ends.
    Resume { host: Option<String> },
}

impl GateChange {
    pub fn host(&self) -> Option<&str> {
        match self {
            GateChange::MaintenanceOn { host, .. }
            | GateChange::MaintenanceOff { host }
            | GateChange::Pause { host, .. }
            | GateChange::Resume { host } => host.as_deref(),
        }
    }

    /// A pause or its end (maintenance otherwise).
    pub fn is_pause(&self) -> bool {
        matches!(self, GateChange::Pause { .. } | GateChange::Resume { .. })
    }
}

impl Gates {
    pub fn is_empty(&self) -> bool {
        self.maintenance.is_empty() && self.pause.is_empty()
    }

    /// These gates with `change` applied at `now` (RFC 3339), and whether
    /// anything differs. `host` is taken lowercased, as routing compares it.
    pub fn with(&self, change: &GateChange, now: &str) -> (Gates, bool) {
        let mut next = self.clone();
        let lower = |h: &Option<String>| h.as_ref().map(|h| h.to_ascii_lowercase());
        match change {
            GateChange::MaintenanceOn {
                host,
                message,
                retry_after,
            } => {
                let host = lower(host);
                next.maintenance.retain(|m| m.host != host);
                next.maintenance.push(Maintenance {
                    host,
                    since: now.to_string(),
                    message: message.clone(),
                    retry_after: retry_after.unwrap_or(MAINTENANCE_RETRY_AFTER),
                });
            }
            GateChange::MaintenanceOff { host } => {
                let host = lower(host);
                next.maintenance
                    .retain(|m| host.is_some() && m.host != host);
            }
            GateChange::Pause {
                host,
                timeout_ms,
                retry_after,
            } => {
                let host = lower(host);
                next.pause.retain(|p| p.host != host);
                next.pause.push(Pause {
                    host,
                    since: now.to_string(),
                    timeout_ms: timeout_ms.unwrap_or(PAUSE_TIMEOUT.as_millis() as u64),
                    retry_after: retry_after.unwrap_or(PAUSE_RETRY_AFTER),
                });
            }
            GateChange::Resume { host } => {
                let host = lower(host);
                next.pause.retain(|p| host.is_some() && p.host != host);
            }
        }
        let changed = next != *self;
        (next, changed)
    }
}

#[cfg(test)]
mod tests;
