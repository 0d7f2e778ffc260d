//! Telling systemd how `teal serve` is doing (`sd_notify`), for a unit of
//! `Type=notify`: ready once it serves, stopping when it stops, and, after
//! an upgrade, which process is the daemon now (`MAINPID`), so systemd
//! follows the successor instead of taking the old daemon's exit for the
//! service's. A no-op without systemd (`NOTIFY_SOCKET` unset).
//!
//! `NOTIFY_SOCKET` stays in teal's environment for a successor started by
//! SIGUSR2; app instances and hooks are started without it (an app must not
//! speak for teal).

use sd_notify::NotifyState;

/// This daemon serves. A successor also says it is the main process now.
pub fn ready(successor: bool) {
    let pid = std::process::id();
    let status = format!("serving (pid {pid})");
    let mut states = vec![NotifyState::Ready, NotifyState::Status(&status)];
    if successor {
        states.push(NotifyState::MainPid(pid));
    }
    send(&states);
}

/// This daemon is stopping (SIGTERM, `systemctl stop`).
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "telling systemd (NOTIFY_SOCKET) failed");
    }
}
