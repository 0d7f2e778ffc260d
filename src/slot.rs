//! The two copies of a service, blue and green, and the states a slot can be in.
//!
//! `Slot` and `SlotState` are domain words used across the crate and on the wire.
//! `Slot` itself belongs to the proxy crate (it keeps a pool per slot), which
//! owns its spelling; `SlotState` is spelled here (lowercase in JSON).

use std::fmt;

pub use teal_proxy::Slot;

use serde::{Deserialize, Serialize};

/// What a slot is doing right now (the `state` field of `teal status --json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotState {
    /// Serving production traffic.
    Live,
    /// The previous version, kept running for an instant rollback.
    Standby,
    /// Healthy and on the preview listener, waiting for `teal promote`.
    Staged,
    /// Nothing running.
    Stopped,
    /// Instances started and being health-gated.
    Starting,
}

impl fmt::Display for SlotState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SlotState::Live => "live",
            SlotState::Standby => "standby",
            SlotState::Staged => "staged",
            SlotState::Stopped => "stopped",
            SlotState::Starting => "starting",
        })
    }
}
