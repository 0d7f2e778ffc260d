//! The systemd units teal writes for `teal serve`: a `.socket` unit that
//! holds the listening sockets (production and, when set, TLS and admin) for as long
//! as the machine runs, and a `.service` unit started on them.
//!
//! - `Type=notify` with `NotifyAccess=all`: systemd knows teal is ready only
//!   once it serves, and follows an upgrade's successor as the main process.
//! - `Restart=always`: a daemon that crashes is started again at once; the
//!   connections that arrive meanwhile wait in the socket's backlog.
//! - `KillMode=process`: stopping the unit stops teal alone. Live instances
//!   keep serving and the next start adopts them (teal stops the others).
//! - `ExecReload` sends SIGUSR2: `systemctl reload` upgrades teal in place to
//!   the binary now at its path.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::spec::{Config, RouterKind};

/// How many files `teal serve` may open (each client connection and each
/// upstream connection is one): systemd's own default hard limit, which
/// `teal serve` raises its soft limit to.
pub const OPEN_FILES: u32 = 524_288;

/// The addresses a socket unit holds for `config`: production, TLS
/// (`[proxy.tls] listen`) and admin with the builtin proxy (those with a
/// fixed port); none with the nginx router, which binds its own. The daemon
/// tells them apart by address, as it does a predecessor's.
pub fn held_sockets(config: &Config) -> Vec<SocketAddr> {
    let tls = config.proxy.tls.as_ref().map(|tls| tls.listen);
    match config.proxy.router {
        RouterKind::Builtin => [Some(config.proxy.listen), tls, config.proxy.admin]
            .into_iter()
            .flatten()
            // A port chosen at bind time cannot be held beforehand.
            .filter(|addr| addr.port() != 0)
            .collect(),
        RouterKind::Nginx => Vec::new(),
    }
}

/// What the units say.
#[derive(Debug, Clone)]
pub struct Units {
    /// The unit name without suffix (`teal` gives `teal.service` and `teal.socket`).
    pub name: String,
    /// The teal binary, as an absolute path.
    pub teal: PathBuf,
    /// The daemon's config file and state directory.
    pub config: PathBuf,
    pub state_dir: PathBuf,
    /// The addresses the socket unit holds: production, TLS, admin. None
    /// (the nginx router binds its own): no socket unit.
    pub listen: Vec<SocketAddr>,
    /// A user's own systemd (`systemctl --user`) rather than the system's.
    pub user: bool,
}

impl Units {
    pub fn service_file(&self) -> String {
        format!("{}.service", self.name)
    }

    pub fn socket_file(&self) -> String {
        format!("{}.socket", self.name)
    }

    pub fn service(&self) -> String {
        let target = if self.user {
            "default.target"
        } else {
            "multi-user.target"
        };
        format!(
            r#"# Written by teal; changes are overwritten when teal writes it again.
[Unit]
Description=teal: zero-downtime blue-green deploys (state in {state})
{socket}After={after}network-online.target docker.service
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=all
ExecStart="{teal}" serve --config "{config}"
ExecReload=/bin/kill -USR2 $MAINPID
WorkingDirectory={workdir}
Restart=always
RestartSec=100ms
KillMode=process
TimeoutStopSec=90
LimitNOFILE={OPEN_FILES}

[Install]
WantedBy={target}
"#,
            socket = if self.listen.is_empty() {
                String::new()
            } else {
                format!("Requires={}\n", self.socket_file())
            },
            after = if self.listen.is_empty() {
                String::new()
            } else {
                format!("{} ", self.socket_file())
            },
            teal = self.teal.display(),
            config = self.config.display(),
            workdir = self
                .config
                .parent()
                .unwrap_or(std::path::Path::new("/"))
                .display(),
            state = self.state_dir.display(),
        )
    }

    pub fn socket(&self) -> String {
        let listen: String = self
            .listen
            .iter()
            .map(|addr| format!("ListenStream={addr}\n"))
            .collect();
        format!(
            r#"# Written by teal; changes are overwritten when teal writes it again.
[Unit]
Description=teal: listening sockets, held while teal serve restarts

[Socket]
{listen}Backlog=4096
NoDelay=true
Service={service}

[Install]
WantedBy=sockets.target
"#,
            service = self.service_file(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units() -> Units {
        Units {
            name: "teal".into(),
            teal: "/usr/local/bin/teal".into(),
            config: "/var/lib/teal/serve.toml".into(),
            state_dir: "/var/lib/teal".into(),
            listen: vec![
                "0.0.0.0:80".parse().unwrap(),
                "127.0.0.1:9100".parse().unwrap(),
            ],
            user: false,
        }
    }

    #[test]
    fn the_socket_unit_holds_every_address_for_the_service() {
        let socket = units().socket();
        assert!(socket.contains("ListenStream=0.0.0.0:80\nListenStream=127.0.0.1:9100\n"));
        assert!(socket.contains("Service=teal.service"));
    }

    #[test]
    fn the_service_is_followed_across_upgrades_and_restarted_always() {
        let service = units().service();
        for line in [
            "Type=notify",
            "NotifyAccess=all",
            "Restart=always",
            "KillMode=process",
            "Requires=teal.socket",
            "ExecReload=/bin/kill -USR2 $MAINPID",
            "WantedBy=multi-user.target",
        ] {
            assert!(
                service.lines().any(|l| l == line),
                "{line} missing:\n{service}"
            );
        }
    }
}
