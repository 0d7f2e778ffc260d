//! `servers`, `[ssh]` and `[hosts."NAME"]` → [`RemoteSpec`].
//!
//! A host's daemon config is `[proxy]` (less `control`, a local path) with the
//! host's `proxy` table laid over it. It is validated here, as the host's teal
//! will read it, so a bad override is caught before any ssh connection.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;

use super::invalid::Invalid;
use super::raw::{RawConfig, RawHost, RawSsh};
use super::values;
use crate::spec::{Destination, HostSettings, RemoteSpec, SshSpec};

#[cfg(test)]
mod tests;

/// The remote parts of a raw config, taken out before the rest is resolved.
#[derive(Debug, Default)]
pub(super) struct RawRemote {
    ssh: Option<RawSsh>,
    hosts: Option<BTreeMap<Spanned<String>, RawHost>>,
    servers: Vec<(String, Vec<Spanned<String>>)>,
}

/// Moves the remote settings out of `raw`.
pub(super) fn take(raw: &mut RawConfig) -> RawRemote {
    let servers = raw
        .services
        .iter_mut()
        .flatten()
        .filter_map(|(name, service)| Some((name.get_ref().clone(), service.servers.take()?)))
        .collect();
    RawRemote {
        ssh: raw.ssh.take(),
        hosts: raw.hosts.take(),
        servers,
    }
}

/// Validates the remote settings. `text` is the whole file (its `[proxy]` table is
/// the base of every host's daemon config); `base` is the file's directory.
pub(super) fn resolve(raw: RawRemote, text: &str, base: &Path) -> Result<RemoteSpec, Invalid> {
    let mut proxy = toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|mut t| match t.remove("proxy") {
            Some(toml::Value::Table(proxy)) => Some(proxy),
            _ => None,
        })
        .unwrap_or_default();
    proxy.remove("control");

    let ssh = ssh(raw.ssh.unwrap_or_default(), base)?;
    let mut hosts = BTreeMap::new();
    for (name, host) in raw.hosts.unwrap_or_default() {
        let settings = host_settings(&name, host, &proxy)?;
        hosts.insert(name.into_inner(), settings);
    }
    let mut servers = BTreeMap::new();
    for (service, list) in raw.servers {
        let mut parsed: Vec<Destination> = Vec::new();
        for text in &list {
            let dest = destination(text)?;
            if parsed.contains(&dest) {
                return Err(Invalid::at(
                    text,
                    format!("server {dest} is listed twice in services.{service}.servers"),
                ));
            }
            parsed.push(dest);
        }
        servers.insert(service, parsed);
    }
    Ok(RemoteSpec {
        ssh,
        proxy,
        hosts,
        servers,
    })
}

fn ssh(raw: RawSsh, base: &Path) -> Result<SshSpec, Invalid> {
    let defaults = SshSpec::default();
    Ok(SshSpec {
        config: match &raw.config {
            Some(path) => Some(values::path(path, "ssh.config", base)?),
            None => None,
        },
        connect_timeout: match &raw.connect_timeout {
            Some(d) => values::duration(d, "ssh.connect_timeout", false)?,
            None => defaults.connect_timeout,
        },
        teal_path: match &raw.teal_path {
            Some(path) => remote_path(path, "ssh.teal_path")?,
            None => defaults.teal_path,
        },
        binary: match &raw.binary {
            Some(path) => Some(values::path(path, "ssh.binary", base)?),
            None => None,
        },
    })
}

fn host_settings(
    name: &Spanned<String>,
    raw: RawHost,
    base_proxy: &toml::Table,
) -> Result<HostSettings, Invalid> {
    destination(name)?;
    let section = format!("hosts.{:?}", name.get_ref());
    let state_dir = match &raw.state_dir {
        Some(dir) => Some(remote_path(dir, &format!("{section}.state_dir"))?),
        None => None,
    };
    let teal_path = match &raw.teal_path {
        Some(path) => Some(remote_path(path, &format!("{section}.teal_path"))?),
        None => None,
    };
    let proxy = raw.proxy.map(Spanned::into_inner).unwrap_or_default();
    let mut merged = base_proxy.clone();
    merged.extend(proxy.clone());
    let text = daemon_config("/teal-host/state", &merged);
    if let Err(e) = super::parse(&text, Path::new("/teal-host/state/serve.toml")) {
        return Err(Invalid::at(
            name,
            format!(
                "[{section}]: the host's daemon would not accept its [proxy] settings: {}",
                e.message
            ),
        ));
    }
    Ok(HostSettings {
        state_dir,
        teal_path,
        proxy,
    })
}

fn destination(text: &Spanned<String>) -> Result<Destination, Invalid> {
    text.get_ref()
        .parse::<Destination>()
        .map_err(|e| Invalid::at(text, e))
}

/// A path on a remote host: absolute, or `~/...` in the remote user's home.
fn remote_path(value: &Spanned<String>, what: &str) -> Result<String, Invalid> {
    let path = value.get_ref();
    let shaped = path.starts_with('/') || path.starts_with("~/");
    if !shaped || path.contains(['\n', '\0']) || path.ends_with('/') {
        return Err(Invalid::at(
            value,
            format!(
                "{what} must be an absolute path or start with ~/ (the remote user's home), got {path:?}"
            ),
        ));
    }
    Ok(path.clone())
}

/// The `teal.toml` a remote daemon runs with: its absolute state dir and `proxy`.
/// Relative paths in `proxy` are relative to the state dir, where the file lives.
pub fn daemon_config(state_dir: &str, proxy: &toml::Table) -> String {
    let mut root = toml::Table::new();
    root.insert("state_dir".into(), toml::Value::String(state_dir.into()));
    root.insert("proxy".into(), toml::Value::Table(proxy.clone()));
    let body = toml::to_string(&root).unwrap_or_default();
    format!("# Written by teal when it deploys to this host; changes are overwritten.\n{body}")
}
