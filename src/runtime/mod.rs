//! Runtimes start and stop the instances of a slot. `deploy/` reaches them only
//! through the [`Runtime`] trait, so a new runtime (docker, ...) is one new file.
//!
//! A runtime owns the lifecycle of what it starts: it supervises instances and
//! restarts those that die unexpectedly (keeping their address), and it knows
//! where their output goes. It does not health-check and does not route.
//!
//! Instances outlive the daemon, processes and containers alike: a live instance
//! is let go of rather than stopped at daemon shutdown ([`Instance::release`]),
//! the next daemon adopts what still runs ([`Runtime::adopt`]) and stops or
//! removes what no slot of its own accounts for ([`Runtime::reconcile`]).

pub mod docker;
pub mod process;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;

use tokio_util::sync::CancellationToken;

use crate::hooks::{HookError, HookReport, HookRequest, Output};
use crate::slot::Slot;
use crate::spec::ServiceSpec;

/// What to start: one slot of one service at one version.
#[derive(Debug, Clone)]
pub struct SlotRequest<'a> {
    pub service: &'a ServiceSpec,
    pub slot: Slot,
    pub version: &'a str,
    /// Identifies the deploy that started these instances (for labels and logs).
    pub deploy_id: &'a str,
    /// The exact build to run, as [`Runtime::resolve`] pinned it (docker: an image
    /// ID), so a rollback runs the same bits even after a tag moved. None lets the
    /// runtime resolve `version` itself.
    pub image: Option<&'a str>,
}

/// A slot that runs and that this daemon should keep (see [`Runtime::reconcile`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownSlot {
    pub slot: Slot,
    pub deploy_id: String,
}

/// Why a runtime could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The spec cannot be run by this runtime (user error).
    #[error("{0}")]
    InvalidSpec(String),
    /// Spawning or talking to the runtime failed.
    #[error("{what}: {error}")]
    Io { what: String, error: std::io::Error },
    /// Anything else the underlying engine reported.
    #[error("{0}")]
    Engine(String),
}

/// How an instance's process or container last ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit code, when it exited normally.
    pub code: Option<i32>,
    /// Signal number, when it was killed.
    pub signal: Option<i32>,
    /// A process it forked into the background and left running when it
    /// exited (which teal then stopped): the app daemonized itself.
    pub left_running: Option<u32>,
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit code {c}"),
            (None, Some(s)) => write!(f, "killed by signal {s}"),
            (None, None) => f.write_str("exited"),
        }
    }
}

/// One running copy of the app inside a slot.
#[async_trait]
pub trait Instance: Send + Sync + fmt::Debug {
    /// 0-based position inside the slot.
    fn index(&self) -> usize;
    /// Where the proxy reaches it. Stable across restarts by the runtime.
    fn addr(&self) -> SocketAddr;
    /// Human identifier: a pid, a container name.
    fn id(&self) -> String;
    /// How many times the runtime restarted it after an unexpected exit.
    fn restarts(&self) -> u32;
    /// `Some` when it is not running right now (between a crash and its restart, or
    /// for good after `stop`).
    fn exited(&self) -> Option<ExitInfo>;
    /// The last `lines` lines of its output, for error reports.
    async fn tail_logs(&self, lines: usize) -> Vec<String>;
    /// Stops it: SIGTERM (or the engine's stop), then a hard kill after `grace`.
    /// Stops supervision first, so a stopped instance is never restarted.
    async fn stop(&self, grace: Duration);
    /// The daemon is stopping and this instance is live: let go of it. Processes
    /// and containers keep running and the next daemon adopts them; an instance
    /// that cannot outlive the daemon is stopped (the default).
    async fn release(&self, grace: Duration) {
        self.stop(grace).await;
    }
    /// What the runtime itself still waits for before the instance counts as
    /// ready, on top of the HTTP health check: docker says `starting` or
    /// `unhealthy` for an image with a HEALTHCHECK. None when nothing.
    fn waiting_for(&self) -> Option<String> {
        None
    }
    /// The exact build it runs (docker: the image ID), when the runtime knows one.
    fn image(&self) -> Option<String> {
        None
    }
    /// Where its processes listen right now (TCP), as the kernel tells it;
    /// None when the runtime cannot tell (a container's own network) or the
    /// instance is not running.
    fn listening(&self) -> Option<Vec<SocketAddr>> {
        None
    }
}

pub type InstanceRef = Arc<dyn Instance>;

/// Starts slots and gives access to their output.
#[async_trait]
pub trait Runtime: Send + Sync {
    /// Starts `service.instances` instances of the requested version. Returns as soon
    /// as they are spawned; health is the caller's business. On error, whatever was
    /// started is stopped again before returning.
    async fn start(&self, req: SlotRequest<'_>) -> Result<Vec<InstanceRef>, RuntimeError>;

    /// Pins what `version` of `service` means right now (docker: resolves the image
    /// reference to its image ID). None when the runtime has nothing to pin.
    async fn resolve(
        &self,
        service: &ServiceSpec,
        version: &str,
    ) -> Result<Option<String>, RuntimeError> {
        let _ = (service, version);
        Ok(None)
    }

    /// Brings a live slot under this daemon's control after a restart. Instances
    /// that are still running are adopted without a restart, missing ones are
    /// started. A runtime whose instances die with the daemon starts the slot
    /// afresh (the default).
    async fn adopt(&self, req: SlotRequest<'_>) -> Result<Vec<InstanceRef>, RuntimeError> {
        self.start(req).await
    }

    /// Compares what runs for `service` with the slots the daemon knows (`known`)
    /// and removes the rest: leftovers of an interrupted deploy, or of a daemon
    /// that was killed. Returns one line per action taken, for the log. Runtimes
    /// whose instances cannot outlive the daemon have nothing to do (the default).
    async fn reconcile(
        &self,
        service: &str,
        known: &[KnownSlot],
    ) -> Result<Vec<String>, RuntimeError> {
        let _ = (service, known);
        Ok(Vec::new())
    }

    /// Services whose instances this runtime has on record as possibly still
    /// running (the process runtime's `processes.json`), so that the daemon can
    /// reconcile one its state no longer names. None by default.
    fn recorded_services(&self) -> Vec<String> {
        Vec::new()
    }

    /// Removes builds (docker: images) among `candidates` that nothing uses and
    /// that no name points at any more. The caller leaves out what history may
    /// still roll back to. Returns what was removed.
    async fn prune(&self, candidates: &[String]) -> Result<Vec<String>, RuntimeError> {
        let _ = candidates;
        Ok(Vec::new())
    }

    /// Runs a hook inside the build of `req.version` (docker: a one-off container
    /// of the new image, removed afterwards), its output line by line to
    /// `output`, stopped after `req.timeout` or when `cancel` fires. Runtimes
    /// without builds to run in refuse (the default).
    async fn run_hook(
        &self,
        req: &HookRequest<'_>,
        output: &Output,
        cancel: &CancellationToken,
    ) -> Result<HookReport, HookError> {
        let _ = (output, cancel);
        Err(HookError::Unsupported(format!(
            "the {} hook has run_in = \"image\", which needs the docker runtime",
            req.point
        )))
    }

    /// The output of one run of a service's instances (see [`LogRun`]), line
    /// by line. With `follow`, the stream continues with new output until
    /// dropped (a run that has ended just ends).
    async fn logs(
        &self,
        service: &str,
        run: &LogRun,
        follow: bool,
    ) -> Result<BoxStream<'static, LogLine>, RuntimeError>;
}

/// Which run of a service's instances `teal logs` shows. A run is one start
/// of a slot: the instances of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogRun {
    /// The slot's latest run.
    Slot(Slot),
    /// The latest run of this version that is kept.
    Version(String),
    /// The latest run before the live one: the other slot's (the version that
    /// was live before, or the last deploy that failed).
    Before(Slot),
}

/// One line of instance output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Which instance wrote it (0-based).
    pub instance: usize,
    pub line: String,
}

/// Where a process-runtime instance writes its output.
pub fn log_path(state_dir: &std::path::Path, service: &str, slot: Slot, index: usize) -> PathBuf {
    state_dir
        .join("logs")
        .join(service)
        .join(format!("{slot}-{index}.log"))
}
