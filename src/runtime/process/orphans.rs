//! What an instance leaves behind when it forks into the background
//! (`gunicorn --daemon`, a double fork): the daemon is a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`), so such a process becomes the daemon's child
//! instead of init's. Here the daemon finds those leftovers, tells them from
//! the children it spawned itself, stops them with their instance, and reaps
//! them when they exit, so none lingers as a zombie.
//!
//! A leftover is known by the environment teal gave its instance
//! (`TEAL_SERVICE`, `TEAL_SLOT`, `TEAL_INSTANCE`, `TEAL_VERSION`, `PORT`),
//! which a fork inherits. A zombie has no environment any more; the daemon
//! reaps a zombie child only when it cannot be one it is waiting for itself:
//! an instance it spawned (its pid is in [`Spawned`]), a hook or the `SIGUSR2`
//! successor (a process group of its own in the daemon's session) or any other
//! command (in the daemon's own process group). Their spawners wait for those;
//! reaping one of them here would steal its exit status.
//!
//! After an upgrade the instances are the successor's by adoption, not its
//! children: what they fork later goes to another reaper, but it is still
//! known by its environment and stopped with its instance.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid as NixPid;
use tokio::process::Child;
use tokio::time::Instant;

use super::instance::Launch;
use super::pid;
use crate::procs;

/// How often the reaper looks for zombies even without a SIGCHLD.
const REAP_EVERY: Duration = Duration::from_secs(5);
/// How often a stop checks whether the leftovers have exited.
const POLL: Duration = Duration::from_millis(25);
/// Rounds of "find and kill" after an instance exited: a leftover may fork
/// again (the second fork of a double fork) while it is being killed.
const KILL_ROUNDS: usize = 40;

/// The instance processes this daemon spawned and has not reaped yet: tokio
/// waits for these, the reaper must not.
#[derive(Debug, Default)]
pub(super) struct Spawned {
    pids: Mutex<HashSet<u32>>,
    /// Set once the reaper task runs.
    reaper: OnceLock<()>,
}

impl Spawned {
    /// Makes this process the child subreaper of everything it starts; called
    /// once by the daemon's process runtime, before it spawns anything.
    pub(super) fn become_subreaper() {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::warn!(
                "cannot become a child subreaper ({e}): an app that goes into the background escapes teal"
            );
        }
    }

    /// Spawns with `spawn` and records the pid before the reaper can look.
    pub(super) fn spawn(
        &self,
        spawn: impl FnOnce() -> std::io::Result<Child>,
    ) -> std::io::Result<Child> {
        let mut pids = self.pids.lock().unwrap();
        let child = spawn()?;
        if let Some(pid) = child.id() {
            pids.insert(pid);
        }
        Ok(child)
    }

    /// tokio has reaped `pid`: it may name another process from now on.
    pub(super) fn reaped(&self, pid: u32) {
        self.pids.lock().unwrap().remove(&pid);
    }

    /// Starts the task that reaps leftover zombies (once; it ends with `self`).
    pub(super) fn start_reaper(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        self.reaper.get_or_init(|| {
            tokio::spawn(reap_loop(weak));
        });
    }

    /// Reaps every zombie child of this process that nobody else waits for.
    fn reap(&self) {
        let me = std::process::id() as procs::Pid;
        let Some(mine) = procs::stat(me) else { return };
        let pids = self.pids.lock().unwrap();
        for (child, stat) in procs::children_with_stat(me) {
            if !stat.is_zombie() || waited_for_elsewhere(child, &stat, &mine, &pids) {
                continue;
            }
            match waitpid(NixPid::from_raw(child), Some(WaitPidFlag::WNOHANG)) {
                Ok(status) => tracing::debug!(pid = child, ?status, "reaped a leftover process"),
                Err(e) => tracing::debug!(pid = child, "could not reap a leftover process: {e}"),
            }
        }
    }
}

/// Whether the child `pid` is one someone in this daemon waits for: an
/// instance it spawned, a hook (its own group in our session), or a command
/// in our own process group.
fn waited_for_elsewhere(
    pid: procs::Pid,
    stat: &procs::Stat,
    mine: &procs::Stat,
    spawned: &HashSet<u32>,
) -> bool {
    if stat.session == mine.session {
        stat.pgrp == mine.pgrp || stat.pgrp == pid
    } else {
        spawned.contains(&(pid as u32))
    }
}

async fn reap_loop(spawned: Weak<Spawned>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigchld = signal(SignalKind::child()).ok();
    loop {
        match sigchld.as_mut() {
            Some(sig) => {
                tokio::select! {
                    _ = sig.recv() => {}
                    _ = tokio::time::sleep(REAP_EVERY) => {}
                }
            }
            None => tokio::time::sleep(REAP_EVERY).await,
        }
        let Some(spawned) = spawned.upgrade() else {
            return;
        };
        spawned.reap();
    }
}

/// The running processes that carry `launch`'s environment but are not the
/// instance's process `current` (nor, unless `with_group`, in its process
/// group, which its group signals reach): what it left behind.
pub(super) fn left_by(
    launch: &Launch,
    current: u32,
    with_group: bool,
) -> Vec<(procs::Pid, procs::Stat)> {
    let (slot, index, port) = (
        launch.slot.to_string(),
        launch.index.to_string(),
        launch.port.to_string(),
    );
    let wanted = [
        ("TEAL_SERVICE", launch.service.as_str()),
        ("TEAL_SLOT", slot.as_str()),
        ("TEAL_INSTANCE", index.as_str()),
        ("TEAL_VERSION", launch.version.as_str()),
        ("PORT", port.as_str()),
    ];
    let me = std::process::id() as procs::Pid;
    let current = current as procs::Pid;
    procs::every_process()
        .into_iter()
        .filter(|(pid, stat)| *pid != me && *pid != current && (with_group || stat.pgrp != current))
        .filter(|(pid, _)| procs::environ_has(*pid, &wanted))
        .collect()
}

/// Sends `signal` to each leftover: to its process group when it has one of its
/// own (a server and its workers), else to the process alone.
fn signal_all(left: &[(procs::Pid, procs::Stat)], signal: Signal) {
    let me = procs::stat(std::process::id() as procs::Pid);
    for (pid, stat) in left {
        let shared_group = me.is_some_and(|m| m.pgrp == stat.pgrp) || stat.pgrp <= 1;
        if shared_group {
            let _ = nix::sys::signal::kill(NixPid::from_raw(*pid), signal);
        } else {
            pid::signal_group(stat.pgrp as u32, signal);
        }
    }
}

/// Kills (SIGKILL) what the instance's process `exited` left running, until
/// two looks in a row find nothing (bounded): one look can miss a process
/// that forks and exits while `/proc` is read (the middle of a double fork).
/// Returns the first leftover it found.
pub(super) async fn kill_left_by(launch: &Launch, exited: u32) -> Option<u32> {
    let mut first = None;
    let mut empty = 0;
    for _ in 0..KILL_ROUNDS {
        let left = left_by(launch, exited, true);
        if left.is_empty() {
            empty += 1;
            if empty == 2 {
                break;
            }
        } else {
            empty = 0;
            first = first.or(left.first().map(|(pid, _)| *pid as u32));
            signal_all(&left, Signal::SIGKILL);
        }
        tokio::time::sleep(POLL).await;
    }
    first
}

/// Stops what the instance's process `current` left running: SIGTERM, then
/// SIGKILL at `deadline`.
pub(super) async fn stop_left_by(launch: &Launch, current: u32, deadline: Instant) {
    let left = left_by(launch, current, false);
    if left.is_empty() {
        return;
    }
    signal_all(&left, Signal::SIGTERM);
    while Instant::now() < deadline && left.iter().any(|(pid, _)| procs::alive(*pid)) {
        tokio::time::sleep(POLL).await;
    }
    kill_left_by(launch, current).await;
}

#[cfg(test)]
mod tests;
