//! Single values of `teal.toml`: durations, sizes, addresses, names, hosts, paths.
//!
//! Each check takes the raw [`Spanned`] value and a dotted `what` naming it in the
//! message, and returns the typed value or an [`Invalid`] pointing at the value.
//! Checks that involve more than one value live in `conflicts.rs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::invalid::Invalid;

/// A humantime duration such as "200ms", "2s" or "1m"; zero only if `allow_zero`.
pub(super) fn duration(
    value: &Spanned<String>,
    what: &str,
    allow_zero: bool,
) -> Result<Duration, Invalid> {
    let text = value.get_ref();
    let duration = humantime::parse_duration(text.trim()).map_err(|e| {
        Invalid::at(
            value,
            format!(
                "invalid duration {text:?} for {what}: {e}; write e.g. \"200ms\", \"2s\" or \"1m\""
            ),
        )
    })?;
    if duration.is_zero() && !allow_zero {
        return Err(Invalid::at(
            value,
            format!("{what} must be greater than zero"),
        ));
    }
    Ok(duration)
}

/// "512m", "1g", "64MiB", "1048576" → bytes.
pub fn bytes(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let shift = match unit.trim() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    number.checked_mul(1u64 << shift)
}

/// An `IP:PORT` socket address; host names are not resolved.
pub(super) fn socket_addr(value: &Spanned<String>, what: &str) -> Result<SocketAddr, Invalid> {
    let text = value.get_ref();
    text.trim().parse().map_err(|_| {
        Invalid::at(
            value,
            format!(
                "invalid address {text:?} for {what}: expected IP:PORT, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\""
            ),
        )
    })
}

/// A non-empty path, made absolute against `base` (the config file's directory).
pub(super) fn path(value: &Spanned<String>, what: &str, base: &Path) -> Result<PathBuf, Invalid> {
    if value.get_ref().is_empty() {
        return Err(Invalid::at(value, format!("{what} must not be empty")));
    }
    Ok(base.join(value.get_ref()))
}

/// Service names: `[a-z0-9][a-z0-9_-]{0,62}`. They appear in file names, logs and URLs.
pub(super) fn service_name(value: &Spanned<String>) -> Result<(), Invalid> {
    let name = value.get_ref();
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if first_ok && rest_ok && name.len() <= 63 {
        return Ok(());
    }
    Err(Invalid::at(
        value,
        format!(
            "invalid service name {name:?}: use 1 to 63 lowercase letters, digits, '_' or '-', starting with a letter or digit"
        ),
    ))
}

/// A DNS name for Host-header routing, returned lowercased (Host matching ignores case).
///
/// Labels of ASCII letters, digits and '-' (not at either end), 1 to 63 characters
/// each, 253 in all. No port, no trailing dot, and no wildcards.
pub(super) fn host(value: &Spanned<String>) -> Result<String, Invalid> {
    let host = value.get_ref();
    let reason = if host.is_empty() {
        Some("it is empty")
    } else if host.starts_with("*.") {
        Some("wildcard hosts are not supported; list each name")
    } else if host.contains(':') {
        Some("give the name without a port")
    } else if host.len() > 253 {
        Some("it is longer than 253 characters")
    } else if !host.split('.').all(dns_label) {
        Some("use labels of letters, digits and '-' separated by '.'")
    } else {
        None
    };
    match reason {
        None => Ok(host.to_ascii_lowercase()),
        Some(reason) => Err(Invalid::at(
            value,
            format!("invalid host {host:?}: {reason}"),
        )),
    }
}

fn dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`, not one teal sets itself.
pub(super) fn env_key(value: &Spanned<String>) -> Result<(), Invalid> {
    let key = value.get_ref();
    let mut chars = key.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(Invalid::at(
            value,
            format!(
                "invalid environment variable name {key:?}: use letters, digits and '_', not starting with a digit"
            ),
        ));
    }
    // The runtime sets these for every instance; an override would break routing.
    if key == "PORT" || key.starts_with("TEAL_") {
        return Err(Invalid::at(
            value,
            format!(
                "environment variable {key} is set by teal for every instance and cannot be overridden"
            ),
        ));
    }
    Ok(())
}

/// A health-check path: starts with '/' and is a valid URL path and query.
pub(super) fn health_path(value: &Spanned<String>, what: &str) -> Result<String, Invalid> {
    let path = value.get_ref();
    if !path.starts_with('/') {
        return Err(Invalid::at(
            value,
            format!("{what} must start with '/', e.g. \"/health\" (got {path:?})"),
        ));
    }
    if path.parse::<http::uri::PathAndQuery>().is_err() {
        return Err(Invalid::at(
            value,
            format!(
                "{what} {path:?} is not a valid URL path (spaces and non-ASCII characters must be percent-encoded)"
            ),
        ));
    }
    Ok(path.clone())
}

#[cfg(test)]
mod tests;
