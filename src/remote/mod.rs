//! Remote hosts over SSH: the CLI side of deploying to servers.
//!
//! Every host is driven the same way as the local daemon: through
//! [`Client`](crate::api::client::Client), over the host daemon's control socket
//! forwarded by the system OpenSSH client. Before that, teal looks at the host
//! (`probe`), installs itself when missing or different (`install`, `binary`)
//! and makes sure `teal serve` runs there (`daemon`). For a docker service,
//! `image` ships the image to hosts that lack it, before anything is staged.
//! `fleet` runs the two-phase cutover across hosts. The daemon never uses this
//! module (the hidden `teal image` commands use `image`'s host half).
//!
//! Per-host state stays on the host (the daemon's state dir, including the
//! deploy lock), so any machine with ssh access can deploy.

pub mod binary;
mod daemon;
pub mod error;
pub mod fleet;
pub mod host;
pub mod image;
mod install;
mod probe;
mod renewal;
pub mod report;
mod shell;
pub mod ssh;

pub use binary::LocalBinary;
pub use daemon::{CONFIG_FILE, LOG_FILE, PID_FILE};
pub use error::{ConnectCause, RemoteError};
pub use fleet::{Fleet, HostOutcome, Open};
pub use host::{Host, Mode, Needs};
pub use probe::Facts;
pub use report::{Quiet, Reporter, Transfer, TransferEnd};
pub use ssh::SshOptions;
