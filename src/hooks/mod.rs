//! Hook commands: what `[services.NAME.hooks]` runs around a deploy.
//!
//! This module runs one command on the daemon's host, in its own process group,
//! with a time limit, the service's environment plus the `TEAL_*` variables, and
//! its output (stdout and stderr, line by line) handed to the caller as it comes.
//! On timeout or shutdown the whole group is stopped (SIGTERM, then SIGKILL).
//! It does not decide when hooks run or what a failure means: `deploy/` does.
//! Hooks that run inside the new version's image are the runtime's business
//! ([`crate::runtime::Runtime::run_hook`]); they take the same [`HookRequest`].

mod output;

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::slot::Slot;
use crate::spec::{HookPoint, ServiceSpec};
pub use output::Output;

/// Between SIGTERM and SIGKILL when a hook is stopped.
const KILL_GRACE: Duration = Duration::from_secs(3);
/// How long output is still read after the hook exited (a child it left behind
/// may hold the pipes open; its output is not waited for longer).
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// What a hook knows about the deploy it runs in: the `TEAL_*` variables and the
/// placeholders of its command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookEnv {
    pub service: String,
    pub version: String,
    /// The version live when the deploy started, if any.
    pub previous_version: Option<String>,
    /// The slot the new version runs in.
    pub slot: Slot,
    /// The preview listener (before the switch it serves the new version), else
    /// the new slot's first instance; None without a listener before it started.
    pub preview_url: Option<String>,
    /// The production listener.
    pub production_url: Option<String>,
}

impl HookEnv {
    /// `TEAL_SERVICE`, `TEAL_VERSION`, `TEAL_PREVIOUS_VERSION`, `TEAL_SLOT`,
    /// `TEAL_PREVIEW_URL`, `TEAL_PRODUCTION_URL` and `TEAL_HOOK` (empty when unknown).
    pub fn vars(&self, point: HookPoint) -> Vec<(String, String)> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        [
            ("TEAL_SERVICE", self.service.clone()),
            ("TEAL_VERSION", self.version.clone()),
            ("TEAL_PREVIOUS_VERSION", opt(&self.previous_version)),
            ("TEAL_SLOT", self.slot.as_str().to_string()),
            ("TEAL_PREVIEW_URL", opt(&self.preview_url)),
            ("TEAL_PRODUCTION_URL", opt(&self.production_url)),
            ("TEAL_HOOK", point.as_str().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// `arg` with `{service}`, `{version}`, `{previous_version}`, `{slot}`,
    /// `{preview_url}` and `{production_url}` replaced.
    pub fn substitute(&self, arg: &str) -> String {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        [
            ("{service}", self.service.clone()),
            ("{version}", self.version.clone()),
            ("{previous_version}", opt(&self.previous_version)),
            ("{slot}", self.slot.as_str().to_string()),
            ("{preview_url}", opt(&self.preview_url)),
            ("{production_url}", opt(&self.production_url)),
        ]
        .iter()
        .fold(arg.to_string(), |acc, (from, to)| acc.replace(from, to))
    }
}

/// One hook to run, placeholders already substituted. `Debug` shows the
/// environment's names only (it holds secret values).
#[derive(Clone)]
pub struct HookRequest<'a> {
    pub point: HookPoint,
    pub service: &'a ServiceSpec,
    /// The version being deployed (the image a `run_in = "image"` hook runs).
    pub version: &'a str,
    /// The slot the new version runs in.
    pub slot: Slot,
    /// The exact build of `version` (docker: image ID), when pinned.
    pub image: Option<&'a str>,
    /// Program and arguments.
    pub command: Vec<String>,
    /// The service's `env`, then the `TEAL_*` variables.
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
}

impl std::fmt::Debug for HookRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookRequest")
            .field("point", &self.point)
            .field("service", &self.service.name)
            .field("version", &self.version)
            .field("slot", &self.slot)
            .field("image", &self.image)
            .field("command", &self.command)
            .field("env", &crate::secrets::KeysOnly(&self.env))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<'a> HookRequest<'a> {
    /// The request for `point`'s `command` of `service`, with `env` substituted in.
    pub fn new(
        point: HookPoint,
        service: &'a ServiceSpec,
        command: &[String],
        timeout: Duration,
        env: &'a HookEnv,
    ) -> HookRequest<'a> {
        let mut vars: Vec<(String, String)> = service.app_env().collect();
        vars.extend(env.vars(point));
        HookRequest {
            point,
            service,
            version: &env.version,
            slot: env.slot,
            image: None,
            command: command.iter().map(|a| env.substitute(a)).collect(),
            env: vars,
            timeout,
        }
    }
}

/// How a hook that succeeded ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookReport {
    pub duration: Duration,
    /// Lines of output it wrote.
    pub lines: u64,
}

/// Why a hook did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("could not start {program}: {error}")]
    Spawn { program: String, error: io::Error },
    #[error("{status} after {}{}", secs(*duration), last_output(tail))]
    Failed {
        /// "exit code 1", "killed by signal 9".
        status: String,
        duration: Duration,
        tail: Vec<String>,
    },
    #[error("timed out after {}: stopped{}", humantime::format_duration(*timeout), last_output(tail))]
    TimedOut {
        timeout: Duration,
        tail: Vec<String>,
    },
    #[error("stopped: the daemon is shutting down")]
    Cancelled,
    /// The hook cannot run where it asked to (e.g. `run_in = "image"` without docker).
    #[error("{0}")]
    Unsupported(String),
    /// The engine that runs `run_in = "image"` hooks failed.
    #[error("{0}")]
    Engine(String),
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn last_output(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; last output: {}", tail.join(" | "))
    }
}

/// Runs `req` on this host, in `workdir`, sending each output line to `output`.
/// Ends by itself after `req.timeout`, or when `cancel` fires.
pub async fn run_on_host(
    req: &HookRequest<'_>,
    workdir: &Path,
    output: &Output,
    cancel: &CancellationToken,
) -> Result<HookReport, HookError> {
    let started = Instant::now();
    let program = crate::spec::program_path(Path::new(&req.command[0]), Some(workdir));
    let mut cmd = Command::new(&program);
    cmd.args(&req.command[1..])
        .envs(req.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for var in crate::systemd::MANAGER_ENV {
        cmd.env_remove(var);
    }
    if workdir.is_dir() {
        cmd.current_dir(workdir);
    }
    let mut child = cmd.spawn().map_err(|error| HookError::Spawn {
        program: program.display().to_string(),
        error,
    })?;
    let pid = child.id();
    let pump = output.pump(child.stdout.take(), child.stderr.take());
    tokio::pin!(pump);
    let mut pumped = false;
    let deadline = tokio::time::sleep(req.timeout);
    tokio::pin!(deadline);
    // Ends at the first of exit, timeout and cancel; `pump` completes at most once.
    let ended = loop {
        tokio::select! {
            status = child.wait() => break Ended::Exited(status),
            _ = &mut pump, if !pumped => pumped = true,
            _ = &mut deadline => break Ended::TimedOut,
            _ = cancel.cancelled() => break Ended::Cancelled,
        }
    };
    if !matches!(ended, Ended::Exited(_)) {
        stop_group(&mut child, pid).await;
    }
    if !pumped {
        let _ = tokio::time::timeout(OUTPUT_GRACE, pump).await;
    }
    let status = match ended {
        Ended::Exited(status) => status,
        Ended::TimedOut => {
            return Err(HookError::TimedOut {
                timeout: req.timeout,
                tail: output.tail(),
            });
        }
        Ended::Cancelled => return Err(HookError::Cancelled),
    };
    let status = status.map_err(|error| HookError::Spawn {
        program: program.display().to_string(),
        error,
    })?;
    let duration = started.elapsed();
    if status.success() {
        return Ok(HookReport {
            duration,
            lines: output.lines(),
        });
    }
    let status = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "failed".to_string(),
    };
    Err(HookError::Failed {
        status,
        duration,
        tail: output.tail(),
    })
}

enum Ended {
    Exited(io::Result<std::process::ExitStatus>),
    TimedOut,
    Cancelled,
}

/// SIGTERM to the hook's process group, SIGKILL after [`KILL_GRACE`], then reap.
async fn stop_group(child: &mut Child, pid: Option<u32>) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        let _ = child.kill().await;
        return;
    };
    let group = Pid::from_raw(pid);
    let _ = killpg(group, Signal::SIGTERM);
    if tokio::time::timeout(KILL_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = killpg(group, Signal::SIGKILL);
        let _ = child.wait().await;
    } else {
        // The leader is gone; make sure nothing it started outlives the stop.
        let _ = killpg(group, Signal::SIGKILL);
    }
}
