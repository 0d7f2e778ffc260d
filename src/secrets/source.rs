//! Reading secret values on the machine that runs `teal deploy`: each name
//! from this process's environment, or else from the secrets file (dotenv,
//! `.teal/secrets` beside `teal.toml` unless `--secrets-file` says otherwise),
//! which must be readable by its owner only.
//!
//! Nothing here prints a value: errors name keys, files and modes.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::SecretValues;

/// The secrets file, relative to the directory of `teal.toml`.
pub const DEFAULT_FILE: &str = ".teal/secrets";

/// Why the values of a deploy's secrets could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(
        "secret {} is not set: teal looked in this machine's environment and in {} ({why}); set it in one of them",
        names.join(", "),
        file.display()
    )]
    Missing {
        names: Vec<String>,
        file: PathBuf,
        /// What the file said: "no such file", or that it lacks the names.
        why: String,
    },
    #[error(
        "refusing the secrets file {}: its mode is {mode:04o}, so it is {} (secrets must be readable by their owner only); run `chmod 600 {}`",
        file.display(),
        if mode & 0o044 != 0 { "group- or world-readable" } else { "group- or world-writable" },
        file.display()
    )]
    Permissive { file: PathBuf, mode: u32 },
    #[error("cannot read the secrets file {}: {error}", file.display())]
    Read { file: PathBuf, error: io::Error },
    #[error("the secrets file {}: {error}", file.display())]
    Syntax {
        file: PathBuf,
        error: crate::dotenv::DotenvError,
    },
}

/// The values of `names`: each from `env` (this process's environment, as a
/// lookup) when set there, else from `file`. The file is opened only when a
/// name is not in the environment, and refused when group or others have any
/// permission on it.
pub fn gather(
    names: &[String],
    file: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<SecretValues, SecretsError> {
    let mut values = BTreeMap::new();
    let mut rest = Vec::new();
    for name in names {
        match env(name) {
            Some(value) => {
                values.insert(name.clone(), value);
            }
            None => rest.push(name.clone()),
        }
    }
    if rest.is_empty() {
        return Ok(SecretValues::new(values));
    }
    let from_file = match read_file(file)? {
        Some(pairs) => pairs,
        None => {
            return Err(SecretsError::Missing {
                names: rest,
                file: file.to_owned(),
                why: "no such file".into(),
            });
        }
    };
    let mut missing = Vec::new();
    for name in rest {
        match from_file.get(&name) {
            Some(value) => {
                values.insert(name, value.clone());
            }
            None => missing.push(name),
        }
    }
    if !missing.is_empty() {
        return Err(SecretsError::Missing {
            names: missing,
            file: file.to_owned(),
            why: "not in the file".into(),
        });
    }
    Ok(SecretValues::new(values))
}

/// The pairs of the secrets file; None when there is no such file.
fn read_file(file: &Path) -> Result<Option<BTreeMap<String, String>>, SecretsError> {
    let read_error = |error| SecretsError::Read {
        file: file.to_owned(),
        error,
    };
    let meta = match std::fs::metadata(file) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(e)),
    };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretsError::Permissive {
            file: file.to_owned(),
            mode,
        });
    }
    let text = std::fs::read_to_string(file).map_err(read_error)?;
    let pairs = crate::dotenv::parse(&text).map_err(|error| SecretsError::Syntax {
        file: file.to_owned(),
        error,
    })?;
    Ok(Some(pairs.into_iter().collect()))
}

#[cfg(test)]
mod tests;
