//! Socket activation: the listening sockets systemd opened for teal (a
//! `.socket` unit) and passes to each `teal serve` it starts (`LISTEN_FDS`).
//!
//! systemd keeps its own copy of each socket, so while the daemon is down
//! (a crash, a restart) new connections wait in the socket's backlog instead
//! of being refused, and the next daemon accepts them.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once the descriptors were taken: each is owned once.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// A TCP listening socket passed by systemd, with the address it listens on.
#[derive(Debug)]
pub struct ActivatedSocket {
    pub addr: SocketAddr,
    pub socket: OwnedFd,
}

/// The listening sockets systemd passed to this process; empty without
/// socket activation.
#[derive(Debug, Default)]
pub struct Activated {
    sockets: Vec<ActivatedSocket>,
}

#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("reading the sockets systemd passed (LISTEN_FDS): {0}")]
    Environment(std::io::Error),
    #[error(
        "systemd passed descriptor {fd}, which is not a TCP listening socket: teal's .socket unit must hold only ListenStream= addresses"
    )]
    NotTcp { fd: i32 },
}

impl Activated {
    /// Takes the sockets systemd passed to this process (`LISTEN_FDS`, for
    /// this pid): the first call does, later ones find none. The descriptors
    /// are closed on exec; app instances and hooks are started without the
    /// variables that name them (see [`super::MANAGER_ENV`]).
    pub fn take() -> Result<Activated, ActivationError> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            return Ok(Activated::default());
        }
        let fds = sd_notify::listen_fds().map_err(ActivationError::Environment)?;
        let mut sockets = Vec::new();
        for fd in fds {
            let socket = adopt(fd);
            let copy = socket.try_clone().map_err(ActivationError::Environment)?;
            let addr = std::net::TcpListener::from(copy)
                .local_addr()
                .map_err(|_| ActivationError::NotTcp { fd })?;
            sockets.push(ActivatedSocket { addr, socket });
        }
        Ok(Activated { sockets })
    }

    /// The addresses of the sockets not taken yet.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.sockets.iter().map(|s| s.addr).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// Takes the socket listening on `addr`, if systemd passed one.
    pub fn take_addr(&mut self, addr: SocketAddr) -> Option<OwnedFd> {
        let at = self.sockets.iter().position(|s| s.addr == addr)?;
        Some(self.sockets.swap_remove(at).socket)
    }

    /// What no listener of teal took (logged: the .socket unit lists an
    /// address the config does not).
    pub fn into_rest(self) -> Vec<ActivatedSocket> {
        self.sockets
    }
}

/// Owns a descriptor systemd passed.
#[allow(unsafe_code)]
fn adopt(fd: RawFd) -> OwnedFd {
    // SAFETY: sd_listen_fds' protocol: systemd opened descriptors
    // 3..3+LISTEN_FDS for this process (sd_notify checked LISTEN_PID),
    // nothing else in teal owns them, and TAKEN makes this the only place,
    // called once per descriptor.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
