//! One supervised child process: spawn, restart after an unexpected exit, stop.
//!
//! A supervisor task owns the `Child` and is the only one that signals or reaps it,
//! so a signal never reaches a pid that was already reaped and reused. `stop` only
//! asks the supervisor (with the grace) and waits until it reports the end.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;

use super::logs;
use super::ports::PortBook;
use crate::runtime::{ExitInfo, Instance};

/// First restart delay after a crash; doubles on each quick crash.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A process that ran this long before exiting is restarted after `BACKOFF_MIN` again.
const BACKOFF_RESET: Duration = Duration::from_secs(10);
/// Grace used when every handle to an instance is gone without a `stop`.
const ORPHAN_GRACE: Duration = Duration::from_secs(5);
/// How often a stop checks whether the rest of a process group has exited.
const GROUP_POLL: Duration = Duration::from_millis(50);

/// What it takes to (re)spawn one instance; the same on every restart.
#[derive(Debug, Clone)]
pub(super) struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Added to the inherited environment (service `env`, then teal's variables).
    pub env: Vec<(String, String)>,
    pub workdir: Option<PathBuf>,
    pub log: PathBuf,
    pub version: String,
}

impl Launch {
    /// Spawns the process in its own process group, output appended to the log.
    pub(super) fn spawn(&self) -> std::io::Result<Child> {
        let log = logs::open(&self.log, false)?;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            // A safety net for a runtime dropped without `stop_all`; the normal
            // path is `stop`, which also reaches the rest of the process group.
            .kill_on_drop(true);
        if let Some(dir) = &self.workdir {
            cmd.current_dir(dir);
        }
        let child = cmd.spawn()?;
        let pid = child.id().unwrap_or(0);
        logs::marker(
            &self.log,
            &format!("started pid {pid} version {}", self.version),
        );
        Ok(child)
    }
}

/// One running copy of the app, as a child process of the daemon.
#[derive(Debug)]
pub struct ProcessInstance {
    index: usize,
    addr: SocketAddr,
    log: PathBuf,
    /// Written by the supervisor on every exit and restart; read by the getters.
    status: Arc<Mutex<Status>>,
    /// Asks the supervisor to stop, with the grace. The first `stop` sets it; the
    /// supervisor checks it before every restart, so a stopped instance stays down.
    stop_tx: watch::Sender<Option<Duration>>,
    /// Turns true once the supervisor has reaped the process for good.
    done_rx: watch::Receiver<bool>,
}

#[derive(Debug, Default)]
struct Status {
    /// The current (or last) process, which is also its process group.
    pid: u32,
    exited: Option<ExitInfo>,
    restarts: u32,
}

impl ProcessInstance {
    /// Spawns the first process and its supervisor. On success the instance owns
    /// `port` and releases it to `ports` when it has stopped for good.
    pub(super) fn spawn(
        index: usize,
        port: u16,
        launch: Launch,
        ports: Arc<Mutex<PortBook>>,
    ) -> std::io::Result<Arc<ProcessInstance>> {
        let child = launch.spawn()?;
        let status = Arc::new(Mutex::new(Status {
            pid: child.id().unwrap_or(0),
            ..Status::default()
        }));
        let (stop_tx, stop_rx) = watch::channel(None);
        let (done_tx, done_rx) = watch::channel(false);
        let log = launch.log.clone();
        let supervisor = Supervisor {
            launch,
            status: status.clone(),
            stop_rx,
        };
        tokio::spawn(async move {
            supervisor.run(child).await;
            ports.lock().unwrap().release(port);
            done_tx.send_replace(true);
        });
        Ok(Arc::new(ProcessInstance {
            index,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            log,
            status,
            stop_tx,
            done_rx,
        }))
    }

    /// Whether it has stopped for good (after `stop`).
    pub(super) fn is_finished(&self) -> bool {
        *self.done_rx.borrow()
    }
}

#[async_trait]
impl Instance for ProcessInstance {
    fn index(&self) -> usize {
        self.index
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn id(&self) -> String {
        self.status.lock().unwrap().pid.to_string()
    }

    fn restarts(&self) -> u32 {
        self.status.lock().unwrap().restarts
    }

    fn exited(&self) -> Option<ExitInfo> {
        self.status.lock().unwrap().exited.clone()
    }

    async fn tail_logs(&self, lines: usize) -> Vec<String> {
        logs::tail(&self.log, lines).await
    }

    async fn stop(&self, grace: Duration) {
        self.stop_tx.send_if_modified(|asked| {
            let first = asked.is_none();
            if first {
                *asked = Some(grace);
            }
            first
        });
        let mut done = self.done_rx.clone();
        // Err means the supervisor is gone, which also means the process is.
        let _ = done.wait_for(|done| *done).await;
    }
}

/// The task that owns the child process.
struct Supervisor {
    launch: Launch,
    status: Arc<Mutex<Status>>,
    stop_rx: watch::Receiver<Option<Duration>>,
}

impl Supervisor {
    async fn run(mut self, mut child: Child) {
        let mut backoff = Backoff::default();
        loop {
            let started = Instant::now();
            let pgid = self.status.lock().unwrap().pid;
            let (exit, stopping) = tokio::select! {
                status = child.wait() => {
                    // It ended on its own: whatever it left in its group goes too,
                    // so the restart finds its port free.
                    signal_group(pgid, Signal::SIGKILL);
                    (exit_info(status), false)
                }
                grace = stop_requested(&mut self.stop_rx) => {
                    (terminate(&mut child, pgid, grace).await, true)
                }
            };
            self.status.lock().unwrap().exited = Some(exit.clone());
            if stopping || self.stop_rx.borrow().is_some() {
                logs::marker(&self.launch.log, &format!("stopped ({exit})"));
                return;
            }
            let mut delay = backoff.after_run(started.elapsed());
            logs::marker(
                &self.launch.log,
                &format!("exited ({exit}), restarting in {delay:?}"),
            );
            child = loop {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop_requested(&mut self.stop_rx) => {
                        logs::marker(&self.launch.log, "stopped while waiting to restart");
                        return;
                    }
                }
                match self.launch.spawn() {
                    Ok(child) => break child,
                    Err(err) => {
                        delay = backoff.after_run(Duration::ZERO);
                        logs::marker(
                            &self.launch.log,
                            &format!("restart failed: {err}; retrying in {delay:?}"),
                        );
                    }
                }
            };
            let mut status = self.status.lock().unwrap();
            status.pid = child.id().unwrap_or(0);
            status.exited = None;
            status.restarts += 1;
        }
    }
}

/// Resolves with the grace once a stop is asked for (or every handle is gone).
async fn stop_requested(rx: &mut watch::Receiver<Option<Duration>>) -> Duration {
    match rx.wait_for(Option::is_some).await {
        Ok(grace) => grace.unwrap_or(ORPHAN_GRACE),
        Err(_) => ORPHAN_GRACE,
    }
}

/// SIGTERM to the group; SIGKILL to whatever is left of it after `grace`.
/// Returns once the process itself has been reaped.
async fn terminate(child: &mut Child, pgid: u32, grace: Duration) -> ExitInfo {
    let deadline = Instant::now() + grace;
    signal_group(pgid, Signal::SIGTERM);
    let status = match tokio::time::timeout_at(deadline, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            signal_group(pgid, Signal::SIGKILL);
            child.wait().await
        }
    };
    // The leader is gone; helpers it started may still be finishing their work.
    while group_alive(pgid) && Instant::now() < deadline {
        tokio::time::sleep(GROUP_POLL).await;
    }
    signal_group(pgid, Signal::SIGKILL);
    exit_info(status)
}

fn signal_group(pgid: u32, signal: Signal) {
    if let Ok(pgid) = i32::try_from(pgid)
        && pgid > 1
    {
        // ESRCH (nothing left in the group) is the common, fine case.
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
}

fn group_alive(pgid: u32) -> bool {
    match i32::try_from(pgid) {
        Ok(pgid) if pgid > 1 => killpg(Pid::from_raw(pgid), None) != Err(Errno::ESRCH),
        _ => false,
    }
}

fn exit_info(status: std::io::Result<ExitStatus>) -> ExitInfo {
    match status {
        Ok(status) => ExitInfo {
            code: status.code(),
            signal: status.signal(),
        },
        Err(_) => ExitInfo {
            code: None,
            signal: None,
        },
    }
}

/// Restart delays: 100 ms doubling to 5 s, back to 100 ms after a long run.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The delay before the next restart of a process that ran for `ran`.
    fn after_run(&mut self, ran: Duration) -> Duration {
        if ran >= BACKOFF_RESET {
            self.next = BACKOFF_MIN;
        }
        let delay = self.next;
        self.next = (delay * 2).min(BACKOFF_MAX);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_after_a_long_run() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(1);
        let delays: Vec<_> = (0..8).map(|_| b.after_run(quick)).collect();
        assert_eq!(delays[0], BACKOFF_MIN);
        assert_eq!(delays[1], BACKOFF_MIN * 2);
        assert_eq!(*delays.last().unwrap(), BACKOFF_MAX);
        assert_eq!(b.after_run(BACKOFF_RESET), BACKOFF_MIN);
    }
}
