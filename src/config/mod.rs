//! `teal.toml` → validated [`Config`](crate::spec::Config).
//!
//! Parse, then resolve: raw serde types with `deny_unknown_fields` live in `raw.rs`,
//! friendlier unknown-key messages in `keys.rs`, validation and path resolution in
//! `resolve.rs` (single values in `values.rs`, clashes between services in
//! `conflicts.rs`, `[proxy.nginx]` in `nginx.rs`, hooks and verification in
//! `hooks.rs`, `[proxy.tls]` and certificate files in `tls.rs`, `env_file` and `secrets` in
//! `env.rs`); each of them fails with `invalid.rs`'s `Invalid`. Every error
//! names the file, line and column. Loading never writes anything, and nothing
//! outside this module sees the raw types.

mod command;
mod conflicts;
mod docker;
mod env;
#[cfg(test)]
mod fixtures;
mod hooks;
mod invalid;
mod keys;
mod nginx;
mod policy;
mod protocol;
mod raw;
mod remote;
mod resolve;
#[cfg(test)]
mod tests;
mod tls;
mod values;

use std::ffi::OsString;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::spec::{Config, RemoteSpec};

pub use remote::daemon_config;
pub use resolve::DEFAULT_STATE_DIR;
pub use values::bytes as parse_bytes;

/// The config file used when neither `--config` nor `TEAL_CONFIG` is given.
pub const DEFAULT_FILE: &str = "teal.toml";

/// A config that cannot be used, located as precisely as possible.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", path.display(), location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
    pub message: String,
}

/// `$TEAL_CONFIG` when set and not empty, otherwise `teal.toml` in the current directory.
pub fn default_path() -> PathBuf {
    path_from_env(std::env::var_os("TEAL_CONFIG"))
}

fn path_from_env(var: Option<OsString>) -> PathBuf {
    match var {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_FILE),
    }
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    parse(&read(path)?, path)
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|err| {
        let message = match err.kind() {
            io::ErrorKind::NotFound => {
                "no such file (`teal init` writes one; or pass --config PATH or set TEAL_CONFIG)"
                    .to_owned()
            }
            _ => format!("cannot read: {err}"),
        };
        ConfigError {
            path: path.to_owned(),
            location: None,
            message,
        }
    })
}

/// Validates `text` as the contents of the config file at `path`.
///
/// `path` names the file in errors, and its directory is what relative paths in the
/// file are resolved against. Nothing is read from or written to disk.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_remote(text, path).map(|(config, _)| config)
}

/// Reads and validates the config file at `path`, with its remote-host settings
/// (`servers`, `[ssh]`, `[hosts."NAME"]`), which only the CLI uses.
pub fn load_remote(path: &Path) -> Result<(Config, RemoteSpec), ConfigError> {
    let text = read(path)?;
    parse_remote(&text, path)
}

/// [`parse`], with the remote-host settings.
pub fn parse_remote(text: &str, path: &Path) -> Result<(Config, RemoteSpec), ConfigError> {
    let error = |span: Option<Range<usize>>, message: String| ConfigError {
        path: path.to_owned(),
        location: span.map(|span| line_col(text, span.start)),
        message,
    };
    let document =
        toml::de::DeTable::parse(text).map_err(|e| error(e.span(), e.message().to_owned()))?;
    if let Some(unknown) = keys::first_unknown_key(document.get_ref()) {
        return Err(error(Some(unknown.span), unknown.message));
    }
    let mut raw = raw::RawConfig::deserialize(toml::Deserializer::from(document))
        .map_err(|e| error(e.span(), e.message().to_owned()))?;
    let file = std::path::absolute(path)
        .map_err(|e| error(None, format!("cannot make the path absolute: {e}")))?;
    let raw_remote = remote::take(&mut raw);
    let config =
        resolve::resolve(raw, &file).map_err(|invalid| error(invalid.span, invalid.message))?;
    let base = file.parent().unwrap_or(Path::new("/"));
    let remote = remote::resolve(raw_remote, text, base)
        .map_err(|invalid| error(invalid.span, invalid.message))?;
    Ok((config, remote))
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}
