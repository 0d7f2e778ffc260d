//! A host ready to be driven: connected, looked at, teal installed and its
//! daemon answering on a control socket forwarded over ssh. From there on it is
//! driven exactly like the local daemon, through [`Client`].

use std::path::Path;
use std::sync::Arc;

use super::binary::LocalBinary;
use super::daemon::{self, CONFIG_FILE};
use super::error::RemoteError;
use super::install;
use super::probe::{self, Facts};
use super::report::Reporter;
use super::ssh::{Ssh, SshOptions};
use crate::api::client::Client;
use crate::spec::{Destination, RemoteSpec, ServiceSpec};

/// What opening a host may do.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Install teal when missing or different and start its daemon (deploy).
    Install(Arc<LocalBinary>),
    /// Use the daemon that runs there; fail when there is none (everything else).
    Attach,
}

/// What a host must have.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    /// The service runs on the docker runtime.
    pub docker: bool,
}

pub struct Host {
    /// The destination as written, used in every message about this host.
    pub name: String,
    pub facts: Facts,
    /// The host's daemon; carries the deploy-lock lease once one is taken.
    pub client: Client,
    ssh: Ssh,
}

impl Host {
    pub async fn open(
        dest: &Destination,
        remote: &RemoteSpec,
        options: &SshOptions,
        mode: &Mode,
        needs: Needs,
        reporter: &dyn Reporter,
    ) -> Result<Host, RemoteError> {
        let name = dest.to_string();
        let ssh = Ssh::connect(dest, options).await?;
        let settings = remote.host(dest);
        let teal_path = settings
            .teal_path
            .as_deref()
            .unwrap_or(&remote.ssh.teal_path);
        let facts = probe::run(&ssh, teal_path, settings.state_dir.as_deref()).await?;
        reporter.note(
            &name,
            &format!("connected ({}, state in {})", facts.arch, facts.state_dir),
        );
        if needs.docker && !facts.docker {
            return Err(RemoteError::host(
                &name,
                "docker is not installed (no docker CLI, no /var/run/docker.sock); install Docker Engine on the host",
            ));
        }
        let mut proxy = remote.proxy.clone();
        proxy.extend(settings.proxy);
        let config_text = crate::config::daemon_config(&facts.state_dir, &proxy);
        let config_path = Path::new(&facts.state_dir).join(CONFIG_FILE);
        let daemon_config = crate::config::parse(&config_text, &config_path).map_err(|e| {
            RemoteError::host(&name, format!("the daemon config for this host: {e}"))
        })?;
        let control = daemon_config.proxy.control.clone();
        let default_state = settings.state_dir.is_none();

        let installed = match mode {
            Mode::Install(binary) => {
                install::ensure(&ssh, &facts, binary, reporter).await?;
                let changed = daemon::write_config(&ssh, &facts, &config_text).await?;
                Some((
                    facts.teal_sha256.as_deref() != Some(binary.sha256.as_str()),
                    changed,
                ))
            }
            Mode::Attach if facts.teal_sha256.is_none() => {
                return Err(RemoteError::host(
                    &name,
                    format!(
                        "teal is not installed (nothing at {}); `teal deploy` installs it",
                        facts.teal
                    ),
                ));
            }
            Mode::Attach => None,
        };

        let local = ssh.forward(&control).await?;
        let client = Client::new(&local);
        match (client.ping().await, installed) {
            (Ok(answer), installed) => {
                let theirs = answer
                    .get("version")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?");
                let ours = env!("CARGO_PKG_VERSION");
                let mut notes = Vec::new();
                let mut upgraded = None;
                if let Some((new_binary, changed_config)) = installed
                    && (new_binary || changed_config)
                {
                    // The running daemon hands itself over to the teal now
                    // installed, which reads the settings anew: no restart.
                    if let Some(pid) = answer.get("pid").and_then(|p| p.as_u64()) {
                        let pid = u32::try_from(pid).unwrap_or(0);
                        upgraded = daemon::upgrade(&ssh, &facts, default_state, pid).await?;
                    }
                    if upgraded.is_none() {
                        if new_binary {
                            notes.push("it keeps running the previous teal binary".to_string());
                        }
                        if changed_config {
                            notes.push(format!("its settings in {config_path:?} changed"));
                        }
                    }
                }
                if let Some(upgraded) = &upgraded {
                    reporter.note(&name, upgraded);
                } else if theirs != ours {
                    notes.push(format!("it runs teal {theirs}, this is {ours}"));
                }
                if !notes.is_empty() {
                    reporter.note(
                        &name,
                        &format!(
                            "teal serve is running; {}: that applies once it restarts (which stops its instances for the restart)",
                            notes.join(", ")
                        ),
                    );
                }
            }
            (Err(_), None) => {
                return Err(RemoteError::host(
                    &name,
                    format!(
                        "teal serve is not running (its control socket {} does not answer); `teal deploy` starts it",
                        control.display()
                    ),
                ));
            }
            (Err(_), Some(_)) => {
                let listen = crate::systemd::units::held_sockets(&daemon_config);
                daemon::start(&ssh, &facts, default_state, &listen, &client, reporter).await?;
            }
        }
        Ok(Host {
            name,
            facts,
            client,
            ssh,
        })
    }

    /// `spec` as this host's daemon runs it: relative paths of the process
    /// runtime resolve in the host's state dir (the local directory of
    /// `teal.toml` means nothing there).
    pub fn spec_for(&self, spec: &ServiceSpec) -> ServiceSpec {
        let mut spec = spec.clone();
        spec.workdir = self.facts.state_dir.clone().into();
        spec
    }

    /// Runs a shell command on the host (the output of `sh -c script`).
    pub async fn shell(&self, script: &str) -> Result<std::process::Output, RemoteError> {
        self.ssh.output(script).await
    }

    pub fn ssh(&self) -> &Ssh {
        &self.ssh
    }

    pub async fn close(self) {
        self.ssh.close().await;
    }
}
