//! What runs around a deploy and how its result is judged: the validated
//! `[services.NAME.hooks]` and `[services.NAME.verify]` sections.
//!
//! `config/` builds these; `deploy/` acts on them (hooks through `crate::hooks`,
//! verification through the router's watch). Like the rest of [`ServiceSpec`](super::ServiceSpec)
//! they travel to the daemon with every deploy, so they are wire types too.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long a hook may run when neither the hook nor `[hooks] timeout` says.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(300);

/// The placeholders a hook command may use, each also passed as a `TEAL_*` variable.
pub const HOOK_PLACEHOLDERS: &[&str] = &[
    "service",
    "version",
    "previous_version",
    "slot",
    "preview_url",
    "production_url",
];

/// The moments of a deploy a hook can run at, in deploy order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookPoint {
    /// Once per deploy, before the new slot starts (migrations: expand).
    PreDeploy,
    /// After the health gate, against the new slot (smoke tests on the preview).
    PreSwitch,
    /// After production moved to the new slot (notifications).
    PostSwitch,
    /// After the old slot was drained and retired (migrations: contract).
    PostRetire,
}

impl HookPoint {
    pub const ALL: [HookPoint; 4] = [
        HookPoint::PreDeploy,
        HookPoint::PreSwitch,
        HookPoint::PostSwitch,
        HookPoint::PostRetire,
    ];

    /// The key in `[services.NAME.hooks]`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookPoint::PreDeploy => "pre_deploy",
            HookPoint::PreSwitch => "pre_switch",
            HookPoint::PostSwitch => "post_switch",
            HookPoint::PostRetire => "post_retire",
        }
    }

    /// True for the hooks that run before the switch: their failure aborts the deploy.
    pub fn before_switch(self) -> bool {
        matches!(self, HookPoint::PreDeploy | HookPoint::PreSwitch)
    }
}

impl std::fmt::Display for HookPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a hook command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HookPlace {
    /// A process on the daemon's host, in the service's directory.
    #[default]
    Host,
    /// A one-off container of the new version's image (docker runtime only).
    Image,
}

/// One hook: a command, its time limit and where it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookSpec {
    /// Program and arguments; placeholders from [`HOOK_PLACEHOLDERS`] are substituted.
    pub command: Vec<String>,
    /// The hook is killed (its whole process group) and counts as failed after this.
    #[serde(with = "super::humantime_serde")]
    pub timeout: Duration,
    #[serde(default)]
    pub run_in: HookPlace,
}

/// `[services.NAME.hooks]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct HooksSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_deploy: Option<HookSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_switch: Option<HookSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_switch: Option<HookSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_retire: Option<HookSpec>,
    /// A failing `post_switch` or `post_retire` hook switches production back to
    /// the previous slot (when it still runs). Off: the failure is only recorded.
    #[serde(default)]
    pub rollback_on_failure: bool,
}

impl HooksSpec {
    pub fn get(&self, point: HookPoint) -> Option<&HookSpec> {
        match point {
            HookPoint::PreDeploy => self.pre_deploy.as_ref(),
            HookPoint::PreSwitch => self.pre_switch.as_ref(),
            HookPoint::PostSwitch => self.post_switch.as_ref(),
            HookPoint::PostRetire => self.post_retire.as_ref(),
        }
    }

    pub fn get_mut(&mut self, point: HookPoint) -> &mut Option<HookSpec> {
        match point {
            HookPoint::PreDeploy => &mut self.pre_deploy,
            HookPoint::PreSwitch => &mut self.pre_switch,
            HookPoint::PostSwitch => &mut self.post_switch,
            HookPoint::PostRetire => &mut self.post_retire,
        }
    }

    pub fn is_empty(&self) -> bool {
        HookPoint::ALL.iter().all(|p| self.get(*p).is_none())
    }
}

/// What to do when a verify window saw fewer than `min_requests` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Inconclusive {
    /// Keep the new version (the default): no traffic is no evidence of harm.
    #[default]
    Promote,
    /// Switch back, as for a failed window.
    Fail,
}

/// `[services.NAME.verify]`: watching the new slot after the switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifySpec {
    /// How long the new slot is watched (the previous slot stays warm meanwhile).
    #[serde(with = "super::humantime_serde")]
    pub window: Duration,
    /// Largest share (0..=1) of the new slot's requests that may fail: 5xx answers
    /// and requests no upstream answered.
    pub max_error_rate: f64,
    /// Largest 99th-percentile time to the response head, when set.
    #[serde(default, with = "option_duration")]
    pub max_p99: Option<Duration>,
    /// Fewer requests than this in the window make it inconclusive; the error rate
    /// is taken over at least this many requests.
    pub min_requests: u64,
    #[serde(default)]
    pub on_inconclusive: Inconclusive,
}

impl Default for VerifySpec {
    fn default() -> Self {
        VerifySpec {
            window: Duration::from_secs(60),
            max_error_rate: 0.01,
            max_p99: None,
            min_requests: 20,
            on_inconclusive: Inconclusive::Promote,
        }
    }
}

/// Serde adapter: `Option<Duration>` as an optional humantime string.
mod option_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => humantime::parse_duration(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}
