//! Running under systemd: the listening sockets it holds for teal while
//! `teal serve` restarts (socket activation), the readiness and main-pid
//! notifications that let it follow an upgrade, and the unit files teal
//! writes for it.
//!
//! Every part does nothing when teal does not run under systemd.

pub mod activation;
pub mod notify;
pub mod units;

pub use activation::{Activated, ActivatedSocket};

/// What systemd tells teal in its environment: its readiness socket and the
/// sockets it passed. App instances and hooks are started without them (an
/// app must not speak for teal, nor take its sockets).
pub const MANAGER_ENV: [&str; 4] = [
    "NOTIFY_SOCKET",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
];
