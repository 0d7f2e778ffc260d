//! Wire types of the control API: the requests, responses, progress events and
//! error classification that the CLI ([`crate::api::client`]) and the daemon
//! ([`crate::api::server`], [`crate::deploy`]) both serialize exactly.
//!
//! A leaf: it depends only on the domain types it carries ([`crate::slot`],
//! [`crate::spec`], [`crate::state`]), never on the API, the daemon or deploys.
//! It does not own how they travel (that is `api/`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::secrets::SecretValues;
use crate::slot::{Slot, SlotState};
use crate::spec::{HookPoint, ServiceSpec};
use crate::state::{DeployLock, Gates, HistoryEntry, SecretStatus};

/// `POST /v1/deploy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployRequest {
    pub spec: ServiceSpec,
    pub version: String,
    /// The exact build to run (docker: the image ID, `sha256:...`) instead of
    /// resolving `version` on the daemon's engine: a remote deploy passes the ID
    /// it shipped. Only for the docker runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// False for `--no-promote`: stop after staging on the preview listener.
    pub promote: bool,
    /// The values of `spec.secrets`, read on the deploying machine. They
    /// travel in this body only (over the control socket, or ssh's forward
    /// of it), never on a command line; `Debug` shows the names only.
    #[serde(default, skip_serializing_if = "SecretValues::is_empty")]
    pub secrets: SecretValues,
}

/// `POST /v1/services/{name}/rollback`, `.../promote`: an optional fresh spec from
/// the caller's `teal.toml` (used when a rollback has to redeploy).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActionRequest {
    pub spec: Option<ServiceSpec>,
}

/// The steps of a deploy, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Prepare,
    /// The `pre_deploy` hook.
    PreDeploy,
    Start,
    Health,
    Preview,
    /// The `pre_switch` hook.
    PreSwitch,
    Switch,
    Persist,
    /// The `post_switch` hook.
    PostSwitch,
    /// The post-switch verify window.
    Verify,
    /// Production goes back to the previous slot (verify or a post hook failed).
    SwitchBack,
    Drain,
    Retire,
    /// The `post_retire` hook.
    PostRetire,
}

impl Step {
    pub fn label(self) -> &'static str {
        match self {
            Step::Prepare => "prepare",
            Step::PreDeploy => "pre_deploy",
            Step::Start => "start",
            Step::Health => "health",
            Step::Preview => "preview",
            Step::PreSwitch => "pre_switch",
            Step::Switch => "switch",
            Step::Persist => "persist",
            Step::PostSwitch => "post_switch",
            Step::Verify => "verify",
            Step::SwitchBack => "switch_back",
            Step::Drain => "drain",
            Step::Retire => "retire",
            Step::PostRetire => "post_retire",
        }
    }

    /// The step a hook runs as.
    pub fn hook(point: HookPoint) -> Step {
        match point {
            HookPoint::PreDeploy => Step::PreDeploy,
            HookPoint::PreSwitch => Step::PreSwitch,
            HookPoint::PostSwitch => Step::PostSwitch,
            HookPoint::PostRetire => Step::PostRetire,
        }
    }
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Traffic goes to the new slot.
    Live,
    /// Healthy on the preview listener; `teal promote` switches.
    Staged,
    /// Production untouched (or switched back).
    Failed,
    /// The staged slot was stopped without going live (`discard`).
    Discarded,
    /// Every instance of the service was stopped on purpose (`teal stop`).
    Stopped,
}

/// One NDJSON line of a streamed action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A step began.
    Step {
        step: Step,
        message: String,
        elapsed_ms: u64,
    },
    /// A detail inside the current step.
    Info { message: String, elapsed_ms: u64 },
    /// The last line of every stream.
    Done {
        outcome: Outcome,
        service: String,
        version: Option<String>,
        slot: Option<Slot>,
        message: String,
        elapsed_ms: u64,
    },
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub services: Vec<ServiceStatus>,
    /// Where the production listener is bound (then the preview listeners).
    pub listen: Vec<SocketAddr>,
    /// Where the TLS listener (`[proxy.tls]`) is bound, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_listen: Option<SocketAddr>,
    /// teal version of the daemon.
    pub daemon_version: String,
    /// The certificates the daemon orders itself (`tls = "acme"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateStatus>,
}

/// One ACME service's certificate and its last order (times are RFC 3339).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateStatus {
    pub service: String,
    /// The names the certificate covers (the service's hosts before it has one).
    pub names: Vec<String>,
    /// The certificate served now, if any.
    pub issuer: Option<String>,
    pub not_after: Option<String>,
    /// Hexadecimal.
    pub serial: Option<String>,
    /// When an order was last tried, and why it failed (None: it worked).
    pub last_attempt: Option<String>,
    pub last_error: Option<String>,
    /// When the next order is due (a renewal or a retry).
    pub next_attempt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub active_slot: Option<Slot>,
    pub active_version: Option<String>,
    pub slots: SlotsStatus,
    pub runtime: String,
    pub hosts: Vec<String>,
    pub preview: Option<SocketAddr>,
    /// True while a deploy, promote or rollback holds the service.
    pub busy: bool,
    /// The deploy lock, when someone holds it (without its lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<DeployLock>,
    /// Maintenance and pause in force (`maintenance`, `pause`; absent: none).
    #[serde(flatten)]
    pub gates: Gates,
    /// The live slot's secrets: names, a digest prefix and when each last
    /// changed; never a value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotsStatus {
    pub blue: SlotStatus,
    pub green: SlotStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotStatus {
    pub version: Option<String>,
    pub state: SlotState,
    pub instances: Vec<InstanceStatus>,
    /// The exact build the slot runs or last ran (docker: image ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub addr: SocketAddr,
    pub healthy: bool,
    /// pid or container name.
    pub id: String,
    pub restarts: u32,
    /// The last health answer, e.g. "HTTP 200".
    pub health: String,
    /// docker: the container name (also in `id`); absent for processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// docker: the image ID the container runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// Something the user should fix, e.g. it listens on every interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// `GET /v1/services/{name}/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub service: String,
    pub entries: Vec<HistoryEntry>,
}

/// `GET /v1/services/{name}/logs`: whose output (`slot=`, `version=` or
/// `previous=1` in the query; none of them: the live slot's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogPick {
    Live,
    Slot(Slot),
    /// The latest kept run of this version.
    Version(String),
    /// The run before the live one.
    Previous,
}

/// `text` for a query value: bytes other than letters, digits and `-._~`
/// as `%XX`.
pub fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`query_escape`]; None when it does not decode to UTF-8.
pub fn query_unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The header that carries a deploy-lock lease on action requests. An action on a
/// locked service needs the lock's lease.
pub const LEASE_HEADER: &str = "teal-lease";

/// `POST /v1/services/{name}/lock`: take the service's deploy lock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockRequest {
    /// Who asks, e.g. "alice@laptop".
    pub owner: String,
    /// What for, e.g. "teal deploy web 1.2.0".
    pub reason: String,
    /// Break a lock someone else holds (`--force-unlock`).
    #[serde(default)]
    pub force: bool,
    /// How long the lock lasts unless renewed (`PUT` on the same path), in
    /// milliseconds; None (an older teal): until released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}

/// The answer to a granted [`LockRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockGrant {
    /// The lock, with the lease to send in [`LEASE_HEADER`] and to release it with.
    pub lock: DeployLock,
    /// The lock that `force` broke, if there was one.
    pub broke: Option<DeployLock>,
    /// A lock whose holder stopped renewing it, replaced by this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lapsed: Option<DeployLock>,
}

/// `DELETE /v1/services/{name}/lock`: what was released.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unlocked {
    pub released: Option<DeployLock>,
}

/// `POST /v1/services/{name}/discard`: stop the staged slot without switching.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DiscardRequest {
    /// Why, for the history (e.g. "host b failed to stage").
    pub reason: Option<String>,
}

/// The answer to `POST /v1/services/{name}/gate` (a [`crate::state::GateChange`]):
/// the service's maintenance and pause now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateAnswer {
    pub service: String,
    pub gates: Gates,
    /// False when the change was already in force (nothing was recorded).
    pub changed: bool,
}

/// How an API error is classified, so the CLI picks its words and exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bad input from the user.
    Invalid,
    /// No such service or nothing to act on.
    NotFound,
    /// Another action holds the service ("deploy in progress").
    Busy,
    /// Something failed inside the daemon.
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> http::StatusCode {
        match self {
            ErrorKind::Invalid => http::StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => http::StatusCode::NOT_FOUND,
            ErrorKind::Busy => http::StatusCode::CONFLICT,
            ErrorKind::Internal => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }
}
