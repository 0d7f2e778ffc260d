//! A service's environment: `env_file` (dotenv, read when the config loads,
//! relative to the file) with the inline `env` over it, and `secrets`, the
//! names whose values are read at deploy time (`crate::secrets`), never here.
//!
//! A name is either configuration or a secret: one given both ways is refused,
//! so what an instance gets never depends on which one wins.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;

use super::invalid::Invalid;
use super::raw::RawService;
use super::values;
use crate::secrets::Secrets;

/// The merged environment and the secret names of `raw`.
pub(super) fn service_env(
    raw: &RawService,
    section: &str,
    base: &Path,
) -> Result<(BTreeMap<String, String>, Secrets), Invalid> {
    let mut env = BTreeMap::new();
    if let Some(file) = &raw.env_file {
        let path = values::path(file, &format!("{section}.env_file"), base)?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Invalid::at(
                file,
                format!("{section}.env_file: cannot read {}: {e}", path.display()),
            )
        })?;
        let pairs = crate::dotenv::parse(&text).map_err(|e| {
            Invalid::at(file, format!("{section}.env_file {}: {e}", path.display()))
        })?;
        for (key, value) in pairs {
            values::env_key(&Spanned::new(file.span(), key.clone())).map_err(|e| {
                Invalid::at(
                    file,
                    format!("{section}.env_file {}: {}", path.display(), e.message),
                )
            })?;
            env.insert(key, value);
        }
    }
    for (key, value) in raw.env.iter().flatten() {
        values::env_key(key)?;
        env.insert(key.get_ref().clone(), value.clone());
    }

    let mut names: Vec<String> = Vec::new();
    for name in raw.secrets.iter().flat_map(|list| list.get_ref()) {
        values::env_key(name)?;
        let key = name.get_ref();
        if names.contains(key) {
            return Err(Invalid::at(
                name,
                format!("{section}.secrets names {key} twice"),
            ));
        }
        if env.contains_key(key) {
            let place = if raw.env.iter().flatten().any(|(k, _)| k.get_ref() == key) {
                "env"
            } else {
                "env_file"
            };
            return Err(Invalid::at(
                name,
                format!(
                    "{key} is both a secret and in {section}'s {place}; give it one way (a secret's value is read at deploy time)"
                ),
            ));
        }
        names.push(key.clone());
    }
    Ok((env, Secrets::named(names)))
}

#[cfg(test)]
mod tests;
