//! The persisted records: what `state.json` holds.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{DeployLock, Gates};
use crate::slot::{Slot, SlotState};
use crate::spec::ServiceSpec;

/// Format version of `state.json`; bumped on incompatible changes.
pub const FORMAT: u32 = 1;

/// How many history entries are kept per service.
pub const HISTORY_LIMIT: usize = 200;

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    pub format: u32,
    #[serde(default)]
    pub services: BTreeMap<String, ServiceRecord>,
    /// Deploy locks by service name (a service may be locked before its first deploy).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub locks: BTreeMap<String, DeployLock>,
}

impl Default for StateFile {
    fn default() -> Self {
        StateFile {
            format: FORMAT,
            services: BTreeMap::new(),
            locks: BTreeMap::new(),
        }
    }
}

/// One service: its spec, its slots and what happened to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// The spec of the last deploy (the daemon persists the specs it was given).
    pub spec: ServiceSpec,
    /// The slot production traffic goes to; None before the first successful switch.
    pub active_slot: Option<Slot>,
    pub slots: SlotRecords,
    /// The version that was live before the current one: what a rollback goes back to.
    pub previous_version: Option<String>,
    /// The exact build of `previous_version` (docker: image ID), so a rollback that
    /// has to redeploy runs the same bits even after its tag moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_image_id: Option<String>,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// Maintenance and pause (`teal maintenance`, `teal pause`): applied
    /// again when the daemon restarts.
    #[serde(default, skip_serializing_if = "Gates::is_empty")]
    pub gates: Gates,
}

impl ServiceRecord {
    pub fn new(spec: ServiceSpec) -> Self {
        ServiceRecord {
            spec,
            active_slot: None,
            slots: SlotRecords::default(),
            previous_version: None,
            previous_image_id: None,
            history: Vec::new(),
            gates: Gates::default(),
        }
    }

    /// The live version, if any.
    pub fn active_version(&self) -> Option<&str> {
        self.active_slot
            .and_then(|s| self.slots.get(s).version.as_deref())
    }

    /// Completes the last entry with `entry.id` (an action that recorded itself at
    /// the switch and finished later): its result, reason, duration, timeline and
    /// verify figures become `entry`'s; what the switch recorded about the build
    /// stays. Appends `entry` if there is none.
    pub fn finish(&mut self, entry: HistoryEntry) {
        match self.history.iter_mut().rev().find(|e| e.id == entry.id) {
            Some(last) => {
                last.result = entry.result;
                last.reason = entry.reason;
                last.duration_ms = entry.duration_ms;
                last.timeline = entry.timeline;
                last.verify = entry.verify;
            }
            None => self.record(entry),
        }
    }

    /// Appends to the history, dropping the oldest entries past the limit.
    pub fn record(&mut self, entry: HistoryEntry) {
        self.history.push(entry);
        if self.history.len() > HISTORY_LIMIT {
            let excess = self.history.len() - HISTORY_LIMIT;
            self.history.drain(..excess);
        }
    }
}

/// The two slots of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SlotRecords {
    pub blue: SlotRecord,
    pub green: SlotRecord,
}

impl SlotRecords {
    pub fn get(&self, slot: Slot) -> &SlotRecord {
        match slot {
            Slot::Blue => &self.blue,
            Slot::Green => &self.green,
        }
    }

    pub fn get_mut(&mut self, slot: Slot) -> &mut SlotRecord {
        match slot {
            Slot::Blue => &mut self.blue,
            Slot::Green => &mut self.green,
        }
    }
}

/// One slot as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotRecord {
    pub version: Option<String>,
    pub state: SlotState,
    /// The deploy that last started this slot.
    pub deploy_id: Option<String>,
    /// The exact build it runs (docker: image ID), when the runtime pins one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
}

impl Default for SlotRecord {
    fn default() -> Self {
        SlotRecord {
            version: None,
            state: SlotState::Stopped,
            deploy_id: None,
            image_id: None,
        }
    }
}

/// What a history entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Deploy,
    Promote,
    Rollback,
    /// The daemon brought the live version back after a restart.
    Restore,
    /// A staged slot was stopped without going live (another host failed to stage).
    Discard,
    /// `teal maintenance SERVICE on` (the reason names the host and message).
    MaintenanceOn,
    MaintenanceOff,
    /// `teal pause SERVICE`.
    Pause,
    Resume,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryResult {
    /// Traffic now goes to the new version.
    Live,
    /// Healthy and waiting for `teal promote`.
    Staged,
    Failed,
    /// The staged slot was stopped; production never moved.
    Discarded,
    /// A maintenance or pause change took effect.
    Applied,
}

/// One deploy, switch or rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub id: String,
    /// RFC 3339 UTC time the action started.
    pub at: String,
    pub action: Action,
    pub version: String,
    /// The version that was live when it started.
    pub from_version: Option<String>,
    pub slot: Slot,
    pub result: HistoryResult,
    /// Why it failed, or notes (drain figures, a failed post hook).
    pub reason: Option<String>,
    pub duration_ms: u64,
    /// The exact build it ran (docker: image ID), when the runtime pins one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// The instances that went live (docker: container names; process: pids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<String>,
    /// Every step with its start and duration (empty in entries of older teals).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelineStep>,
    /// How the post-switch verify window ended, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyRecord>,
}

/// One step of an action's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineStep {
    /// The step, as progress events name it ("health", "pre_switch", "verify").
    pub step: String,
    /// RFC 3339 UTC time the step began, to the millisecond.
    pub at: String,
    /// When it began, in milliseconds after the action began.
    pub offset_ms: u64,
    pub duration_ms: u64,
    /// The step is where the action failed (or a post hook failed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    /// What came of it: a hook's exit, the verify figures, a drain's wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How a verify window judged the new slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Enough requests, every threshold held.
    Passed,
    /// A threshold was crossed: production went back to the previous slot.
    Failed,
    /// Fewer than `min_requests` requests; `on_inconclusive` decided.
    Inconclusive,
    /// The router cannot watch traffic (nginx) or there was nothing to go back to.
    Skipped,
}

/// The figures of a verify window, for the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyRecord {
    pub verdict: Verdict,
    /// Requests to the new slot during the window (until the switch back).
    pub requests: u64,
    /// Of those, 5xx answers and requests no upstream answered.
    pub errors: u64,
    pub upstream_failures: u64,
    /// 99th percentile time to the response head, in milliseconds (bucket top).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// How long the window watched.
    pub watched_ms: u64,
    /// Why it failed, was inconclusive or skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl HistoryEntry {
    /// Formats `t` as RFC 3339 with seconds precision.
    pub fn timestamp(t: SystemTime) -> String {
        humantime::format_rfc3339_seconds(t).to_string()
    }

    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.duration_ms)
    }
}
