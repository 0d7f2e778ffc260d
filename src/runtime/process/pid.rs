//! Processes as the kernel names them: which process a pid is now (its start time
//! in `/proc`), its exit when it is not our child (a pidfd), and signals to its
//! process group.
//!
//! An instance started by an earlier `teal serve` is no child of this one: it
//! cannot be waited for, and its exit code is lost. A pidfd (Linux 5.3+) still
//! becomes readable when it exits, and opening the pidfd before checking the start
//! time makes the check race-free: a pid reused in between shows another start time.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// How long a check of an adopted instance's port waits for the connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a stop checks whether the rest of a process group has exited.
const GROUP_POLL: Duration = Duration::from_millis(50);

/// When the process `pid` started (field 22 of `/proc/<pid>/stat`, clock ticks
/// after boot); None when there is no such process, or only its zombie.
pub(super) fn start_time(pid: u32) -> Option<u64> {
    let stat = crate::procs::stat(i32::try_from(pid).ok()?)?;
    (!stat.is_zombie()).then_some(stat.start_time)
}

/// Tells when a process exits, whoever its parent is.
#[derive(Debug)]
pub(super) struct ExitWatch {
    pidfd: AsyncFd<OwnedFd>,
}

impl ExitWatch {
    /// Watches the process that has `pid` right now.
    pub(super) fn open(pid: u32) -> std::io::Result<ExitWatch> {
        let raw = i32::try_from(pid).map_err(std::io::Error::other)?;
        let pid = rustix::process::Pid::from_raw(raw)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
        // Deprecated because a type that merely borrows its fd could close it while
        // registered; an `OwnedFd` moved in is closed only after deregistration.
        #[allow(deprecated)]
        let pidfd = AsyncFd::with_interest(fd, Interest::READABLE)?;
        Ok(ExitWatch { pidfd })
    }

    /// Resolves once the process has exited (at once if it already has).
    pub(super) async fn exited(&self) {
        // A pidfd turns readable when its process exits and stays so; an error
        // here means the registration is gone, and waiting longer would hang.
        let _ = self.pidfd.readable().await;
    }
}

/// Whether something accepts TCP connections on the loopback `port`.
pub(super) async fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    matches!(
        tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Sends `signal` to the process group `pgid`. ESRCH (nothing left in the group)
/// is the common, fine case.
pub(super) fn signal_group(pgid: u32, signal: Signal) {
    if let Ok(pgid) = i32::try_from(pgid)
        && pgid > 1
    {
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
}

pub(super) fn group_alive(pgid: u32) -> bool {
    match i32::try_from(pgid) {
        Ok(pgid) if pgid > 1 => killpg(Pid::from_raw(pgid), None) != Err(Errno::ESRCH),
        _ => false,
    }
}

/// Waits (until `deadline`) for helpers the group's leader left behind, then
/// kills whatever is still there.
pub(super) async fn finish_group(pgid: u32, deadline: Instant) {
    while group_alive(pgid) && Instant::now() < deadline {
        tokio::time::sleep(GROUP_POLL).await;
    }
    signal_group(pgid, Signal::SIGKILL);
}

/// Stops a process that is no child of ours and leads its own group: SIGTERM to
/// the group, SIGKILL after `grace`. `start_time` tells it from a later process
/// with the same pid. Returns once it and its group are gone.
pub(super) async fn terminate_foreign(pid: u32, start_time: u64, grace: Duration) {
    let deadline = Instant::now() + grace;
    let alive = || self::start_time(pid) == Some(start_time);
    signal_group(pid, Signal::SIGTERM);
    while alive() && Instant::now() < deadline {
        tokio::time::sleep(GROUP_POLL).await;
    }
    if alive() {
        signal_group(pid, Signal::SIGKILL);
    }
    finish_group(pid, deadline).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_of_this_process_is_stable_and_a_missing_pid_has_none() {
        let me = std::process::id();
        let first = start_time(me).expect("our own start time");
        assert!(first > 0);
        assert_eq!(start_time(me), Some(first));
        // pid_max is at most 2^22 on Linux.
        assert_eq!(start_time(4_194_304 + 1), None);
    }
}
