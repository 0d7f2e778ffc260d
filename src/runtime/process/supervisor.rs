//! The task that owns one instance's process: it waits for its exit, restarts it
//! with backoff on the same port, stops it, or lets go of it.
//!
//! The supervisor is the only one that signals or reaps the process, so a signal
//! never reaches a pid that was already reaped and reused. The process is either
//! our child (waited for, with its exit status) or one an earlier daemon started
//! and this one adopted (its exit seen through a pidfd, without a status). Every
//! start is recorded in the [`ProcessBook`]; a stop for good removes the record,
//! letting go keeps it for the next daemon.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::process::Child;
use tokio::sync::watch;
use tokio::time::Instant;

use super::instance::Launch;
use super::logs;
use super::orphans;
use super::pid::{self, ExitWatch};
use crate::runtime::ExitInfo;
use crate::state::ProcessBook;

/// First restart delay after a crash; doubles on each quick crash.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A process that ran this long before exiting is restarted after `BACKOFF_MIN` again.
const BACKOFF_RESET: Duration = Duration::from_secs(10);
/// Grace used when every handle to an instance is gone without a `stop`.
const ORPHAN_GRACE: Duration = Duration::from_secs(5);

/// Written by the supervisor, read by the instance's getters.
#[derive(Debug, Default)]
pub(super) struct Status {
    /// The current (or last) process, which is also its process group.
    pub pid: u32,
    pub exited: Option<ExitInfo>,
    pub restarts: u32,
}

/// How the instance is asked to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// SIGTERM to the group, SIGKILL after the grace; the record goes.
    Stop(Duration),
    /// The daemon stops and this instance is live: stop supervising, leave the
    /// process running and its record in place for the next daemon.
    Release,
}

/// How the supervisor ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    Stopped,
    LetGo,
}

/// The process being supervised.
#[derive(Debug)]
pub(super) enum Running {
    Child(Child),
    Adopted(ExitWatch),
}

impl Running {
    /// Resolves when the process has exited (cancel-safe).
    async fn wait(&mut self) -> ExitInfo {
        match self {
            Running::Child(child) => exit_info(child.wait().await),
            Running::Adopted(watch) => {
                watch.exited().await;
                // Not our child: the exit status went to its new parent.
                ExitInfo {
                    code: None,
                    signal: None,
                    left_running: None,
                }
            }
        }
    }
}

pub(super) struct Supervisor {
    launch: Launch,
    status: Arc<Mutex<Status>>,
    end_rx: watch::Receiver<Option<Ending>>,
    book: Arc<ProcessBook>,
    /// While true, dropping the supervisor (its task cancelled: a runtime dropped
    /// without a stop or release, e.g. a test's daemon) kills the process group,
    /// as `kill_on_drop` would. False once it stopped or let go.
    armed: bool,
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if self.armed {
            let pid = self.status.lock().map(|s| s.pid).unwrap_or(0);
            pid::signal_group(pid, Signal::SIGKILL);
        }
    }
}

impl Supervisor {
    pub(super) fn new(
        launch: Launch,
        status: Arc<Mutex<Status>>,
        end_rx: watch::Receiver<Option<Ending>>,
        book: Arc<ProcessBook>,
    ) -> Supervisor {
        Supervisor {
            launch,
            status,
            end_rx,
            book,
            armed: true,
        }
    }

    pub(super) async fn run(mut self, running: Running) -> Ended {
        let ended = self.supervise(running).await;
        self.armed = false;
        ended
    }

    async fn supervise(&mut self, mut running: Running) -> Ended {
        let mut backoff = Backoff::default();
        loop {
            let started = Instant::now();
            let pgid = self.pid();
            let (mut exit, asked) = tokio::select! {
                exit = running.wait() => (exit, None),
                ending = end_requested(&mut self.end_rx) => match ending {
                    Ending::Release => {
                        logs::marker(&self.launch.log, "let go: the daemon stops, the instance keeps running");
                        return Ended::LetGo;
                    }
                    Ending::Stop(grace) => {
                        // What it forked into the background goes with it.
                        let deadline = Instant::now() + grace;
                        let (exit, ()) = tokio::join!(
                            terminate(&mut running, pgid, grace),
                            orphans::stop_left_by(&self.launch, pgid, deadline),
                        );
                        (exit, Some(grace))
                    }
                },
            };
            self.launch.spawned.reaped(pgid);
            if asked.is_none() {
                // It ended on its own: whatever it left goes too, so the restart
                // finds its port free; its group, and what it forked into the
                // background (a double fork: the exit says so).
                let first = orphans::left_by(&self.launch, pgid, true)
                    .first()
                    .map(|(pid, _)| *pid as u32);
                pid::signal_group(pgid, Signal::SIGKILL);
                exit.left_running = first.or(orphans::kill_left_by(&self.launch, pgid).await);
                if let Some(left) = exit.left_running {
                    logs::marker(
                        &self.launch.log,
                        &format!(
                            "pid {pgid} exited and left pid {left} running in the background; stopped it"
                        ),
                    );
                }
            }
            self.status.lock().unwrap().exited = Some(exit.clone());
            if asked.is_some() || self.end_rx.borrow().is_some() {
                self.forget(pgid);
                logs::marker(&self.launch.log, &format!("stopped ({exit})"));
                return Ended::Stopped;
            }
            let mut delay = backoff.after_run(started.elapsed());
            let how = match (exit.code, exit.signal) {
                // An adopted process: its exit status went to its new parent.
                (None, None) => "exited".to_string(),
                _ => format!("exited ({exit})"),
            };
            logs::marker(&self.launch.log, &format!("{how}, restarting in {delay:?}"));
            let child = loop {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = end_requested(&mut self.end_rx) => {
                        self.forget(pgid);
                        logs::marker(&self.launch.log, "stopped while waiting to restart");
                        return Ended::Stopped;
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
            let pid = child.id().unwrap_or(0);
            if let Err(e) = self.book.started(self.launch.record(pid), Some(pgid)) {
                tracing::error!(service = %self.launch.service, pid, "could not record the restarted instance: {e}");
            }
            running = Running::Child(child);
            let mut status = self.status.lock().unwrap();
            status.pid = pid;
            status.exited = None;
            status.restarts += 1;
        }
    }

    fn pid(&self) -> u32 {
        self.status.lock().unwrap().pid
    }

    /// Drops the record of a process that is gone for good.
    fn forget(&self, pid: u32) {
        if let Err(e) = self.book.forget(pid) {
            tracing::error!(service = %self.launch.service, pid, "could not drop the record of a stopped instance: {e}");
        }
    }
}

/// Resolves with how to end once asked (a stop when every handle is gone).
async fn end_requested(rx: &mut watch::Receiver<Option<Ending>>) -> Ending {
    match rx.wait_for(Option::is_some).await {
        Ok(ending) => ending.unwrap_or(Ending::Stop(ORPHAN_GRACE)),
        Err(_) => Ending::Stop(ORPHAN_GRACE),
    }
}

/// SIGTERM to the group; SIGKILL to whatever is left of it after `grace`.
/// Returns once the process itself has exited (and, for a child, been reaped).
async fn terminate(running: &mut Running, pgid: u32, grace: Duration) -> ExitInfo {
    let deadline = Instant::now() + grace;
    pid::signal_group(pgid, Signal::SIGTERM);
    let exit = match tokio::time::timeout_at(deadline, running.wait()).await {
        Ok(exit) => exit,
        Err(_) => {
            pid::signal_group(pgid, Signal::SIGKILL);
            running.wait().await
        }
    };
    // The leader is gone; helpers it started may still be finishing their work.
    pid::finish_group(pgid, deadline).await;
    exit
}

fn exit_info(status: std::io::Result<ExitStatus>) -> ExitInfo {
    match status {
        Ok(status) => ExitInfo {
            code: status.code(),
            signal: status.signal(),
            left_running: None,
        },
        Err(_) => ExitInfo {
            code: None,
            signal: None,
            left_running: None,
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
