//! `teal.toml` → validated [`Config`](crate::spec::Config).
//!
//! Parse, then resolve: raw serde types with `deny_unknown_fields` live in `raw.rs`,
//! validation and path resolution here. Every error names the file, line and column.
//! Loading never writes anything.

use std::path::{Path, PathBuf};

use crate::spec::Config;

/// A config that cannot be used, located as precisely as possible.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", path.display(), location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
    pub message: String,
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let _ = path;
    todo!("config::load")
}
