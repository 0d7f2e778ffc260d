//! What every client verb needs: the config file and a client for the daemon.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::exit::UsageError;
use crate::api::client::Client;
use crate::spec::{Config, ServiceSpec};

/// Options every verb accepts.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// Path to teal.toml [default: ./teal.toml]
    #[arg(long, global = true, env = "TEAL_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Control socket of the daemon, overriding the one teal.toml names.
    #[arg(long, global = true, env = "TEAL_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

impl Global {
    pub fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from("teal.toml"))
    }

    /// Loads and validates teal.toml.
    pub fn load_config(&self) -> anyhow::Result<Config> {
        Ok(crate::config::load(&self.config_path())?)
    }

    /// A client for the daemon: `--socket` when given, else the config's control path.
    pub fn client(&self) -> anyhow::Result<Client> {
        if let Some(socket) = &self.socket {
            return Ok(Client::new(socket));
        }
        let config = self.load_config()?;
        Ok(Client::new(&config.proxy.control))
    }
}

/// The spec of `name` from the config, or an error listing the known services.
pub fn service_spec(config: &Config, name: &str) -> anyhow::Result<ServiceSpec> {
    config.services.get(name).cloned().ok_or_else(|| {
        let known: Vec<&str> = config.services.keys().map(String::as_str).collect();
        let known = if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        };
        UsageError(format!(
            "{}: no service {name:?} (known: {known})",
            config.path.display()
        ))
        .into()
    })
}

/// The secrets file: `--secrets-file` when given, else `.teal/secrets` beside
/// teal.toml (`teal deploy` reads it, `teal check` looks in it).
pub fn secrets_file(config: &Config, given: Option<&Path>) -> anyhow::Result<PathBuf> {
    Ok(match given {
        Some(file) => std::path::absolute(file)?,
        None => config
            .path
            .parent()
            .unwrap_or(Path::new("/"))
            .join(crate::secrets::DEFAULT_FILE),
    })
}

/// A current-thread runtime for client verbs.
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(rt.block_on(future))
}
