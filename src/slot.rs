//! The two copies of a service, blue and green, and the states a slot can be in.
//!
//! `Slot` and `SlotState` are domain words used across the crate and on the wire;
//! this module owns their spelling (lowercase in JSON, TOML and the CLI).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the two copies of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    Blue,
    Green,
}

impl Slot {
    pub const ALL: [Slot; 2] = [Slot::Blue, Slot::Green];

    /// The other copy.
    pub fn other(self) -> Slot {
        match self {
            Slot::Blue => Slot::Green,
            Slot::Green => Slot::Blue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Slot {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "blue" => Ok(Slot::Blue),
            "green" => Ok(Slot::Green),
            other => Err(format!(
                "unknown slot {other:?}: expected \"blue\" or \"green\""
            )),
        }
    }
}

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
