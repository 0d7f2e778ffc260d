//! Managed mode: teal's own nginx master, with its config, pid file, error log
//! and temp dirs under `state_dir/nginx/`, running as the user teal runs as
//! (its workers as `nobody` when that is root: see `workers`).
//!
//! The master runs in the foreground (`daemon off;`) as a child of teal, in a
//! process group of its own. A master left behind by a teal that was killed, or
//! by one that handed over to a successor (`teal serve --upgrade`, which never
//! stops it), is found through the pid file and adopted (its command line must
//! name this config), as a hand-written deploy script reuses its running
//! reverse-proxy container: it holds the ports, so starting a second one would
//! fail, and it serves on while teal changes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid as NixPid;

use super::binary::{self, Binary};
use super::log_tail::{file_len, lines_since};
use super::procs::{self, Pid};
use super::render::{self, MainSettings};
use super::workers::{self, WorkerAccount};
use crate::router::RouterError;

/// nginx retries a busy port for about 2.5 s before giving up; allow for that.
const START_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(10);

/// The master teal started or adopted.
struct Master {
    pid: Pid,
    /// Set when teal spawned it: reaping goes through it. None when adopted.
    child: Option<tokio::process::Child>,
}

pub(crate) struct Managed {
    binary: Binary,
    /// `state_dir/nginx`.
    dir: PathBuf,
    workers: Option<usize>,
    /// Who the workers run as, where they write temp files.
    account: WorkerAccount,
    master: Option<Master>,
}

impl Managed {
    /// Prepares `dir` (and its temp dirs) and adopts a master left running there.
    pub fn new(binary: Binary, dir: &Path, workers: Option<usize>) -> Result<Managed, RouterError> {
        fs::create_dir_all(dir)
            .map_err(|e| RouterError::Other(format!("cannot create {}: {e}", dir.display())))?;
        let account = prepare_workers(dir)?;
        let mut managed = Managed {
            binary,
            dir: dir.to_owned(),
            workers,
            account,
            master: None,
        };
        managed.adopt();
        Ok(managed)
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.join("nginx.conf")
    }

    pub fn staging(&self) -> PathBuf {
        self.dir.join("nginx.conf.new")
    }

    pub fn error_log(&self) -> PathBuf {
        render::error_log(&self.dir)
    }

    pub fn main_settings(&self) -> MainSettings {
        MainSettings {
            dir: self.dir.clone(),
            workers: self.workers,
            user: self.account.user.clone(),
            temp: self.account.temp.clone(),
        }
    }

    /// `nginx -t` on `file`.
    pub async fn check(&self, file: &Path) -> Result<(), String> {
        let log = self.error_log();
        let mut command = self.binary.command(&self.dir, Some(&log));
        command.arg("-t").arg("-c").arg(file);
        binary::run(&mut command).await
    }

    /// The master's pid while it runs; forgets (and reaps) a master that exited.
    pub fn running(&mut self) -> Option<Pid> {
        let master = self.master.as_mut()?;
        let alive = match &mut master.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => procs::alive(master.pid),
        };
        if alive {
            Some(master.pid)
        } else {
            let pid = master.pid;
            self.master = None;
            tracing::warn!(pid, "the managed nginx master is gone");
            None
        }
    }

    /// Starts a master on the installed `nginx.conf` and waits until it has bound
    /// its listeners and started workers. On failure, nginx's own error lines.
    pub async fn start(&mut self) -> Result<Pid, RouterError> {
        // Again: a stop removed temp dirs kept outside the state dir.
        self.account = prepare_workers(&self.dir)?;
        let log = self.error_log();
        let offset = file_len(&log);
        let stderr_path = self.dir.join("nginx.stderr");
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .map_err(|e| {
                RouterError::Other(format!("cannot open {}: {e}", stderr_path.display()))
            })?;
        let stderr_offset = file_len(&stderr_path);
        let mut command = self.binary.command(&self.dir, Some(&log));
        // A process group of its own: a Ctrl-C meant for `teal serve` (or the
        // group of a daemon that handed over and left) never reaches nginx;
        // teal stops it gracefully itself.
        command
            .arg("-c")
            .arg(self.conf())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0);
        let mut child = command.spawn().map_err(|e| {
            RouterError::Other(format!("cannot start {}: {e}", self.binary.path.display()))
        })?;
        let pid = child.id().map(|p| p as Pid).unwrap_or(0);
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut message = lines_since(&log, offset, true);
                if message.is_empty() {
                    message = lines_since(&stderr_path, stderr_offset, false);
                }
                if message.is_empty() {
                    message = format!("nginx exited with {status}");
                }
                message.push_str(&crate::router::bind::nginx_hint(&message));
                return Err(RouterError::Nginx {
                    stage: "start".into(),
                    message,
                });
            }
            let ready = read_pid(&render::pid_file(&self.dir)) == Some(pid)
                && !procs::children(pid).is_empty();
            if ready {
                break;
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(RouterError::Nginx {
                    stage: "start".into(),
                    message: format!(
                        "nginx did not start its workers within {START_TIMEOUT:?}; see {}",
                        log.display()
                    ),
                });
            }
            tokio::time::sleep(POLL).await;
        }
        tracing::info!(pid, conf = %self.conf().display(), "managed nginx started");
        self.master = Some(Master {
            pid,
            child: Some(child),
        });
        Ok(pid)
    }

    /// SIGHUP: re-read the config, start new workers, retire the old ones.
    pub fn reload(&mut self, master: Pid) -> Result<(), String> {
        kill(NixPid::from_raw(master), Signal::SIGHUP)
            .map_err(|e| format!("cannot signal the nginx master {master}: {e}"))
    }

    /// Graceful stop (SIGQUIT: in-flight requests finish), then SIGTERM and
    /// SIGKILL if `grace` is not enough.
    pub async fn stop(&mut self, grace: Duration) {
        let Some(pid) = self.running() else { return };
        let master = self.master.take();
        let deadline = Instant::now() + grace;
        for (signal, until) in [
            (Signal::SIGQUIT, deadline),
            (
                Signal::SIGTERM,
                Instant::now().max(deadline) + Duration::from_secs(2),
            ),
            (
                Signal::SIGKILL,
                Instant::now().max(deadline) + Duration::from_secs(5),
            ),
        ] {
            let _ = kill(NixPid::from_raw(pid), signal);
            while procs::alive(pid) && Instant::now() < until {
                tokio::time::sleep(POLL).await;
            }
            if !procs::alive(pid) {
                break;
            }
            tracing::warn!(pid, ?signal, "the managed nginx did not stop in time");
        }
        if let Some(Master {
            child: Some(mut child),
            ..
        }) = master
        {
            let _ = child.wait().await;
        }
        let _ = fs::remove_file(render::pid_file(&self.dir));
        workers::forget(&self.account);
        tracing::info!(pid, "managed nginx stopped");
    }

    /// Lets go of the master without stopping it, pid file kept: a successor
    /// daemon adopted it (`teal serve --upgrade`). A master this daemon
    /// spawned runs on as the init process's child once this daemon exits.
    pub fn release(&mut self) {
        if let Some(master) = self.master.take() {
            tracing::info!(
                pid = master.pid,
                "managed nginx left running for the daemon that took over"
            );
        }
    }

    /// Takes over a master that a previous teal left running on this config.
    fn adopt(&mut self) {
        let Some(pid) = read_pid(&render::pid_file(&self.dir)) else {
            return;
        };
        let title = procs::title(pid);
        let ours = procs::alive(pid)
            && title.contains("nginx: master process")
            && title.contains(&*self.conf().to_string_lossy());
        if ours {
            tracing::info!(
                pid,
                "adopting the managed nginx left running by a previous teal"
            );
            self.master = Some(Master { pid, child: None });
        }
    }
}

fn prepare_workers(dir: &Path) -> Result<WorkerAccount, RouterError> {
    workers::prepare(dir).map_err(|e| {
        RouterError::Other(format!(
            "cannot prepare nginx's temp dirs for {}: {e}",
            dir.display()
        ))
    })
}

fn read_pid(path: &Path) -> Option<Pid> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}
