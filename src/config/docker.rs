//! The docker runtime's keys: `image`, `port`, `command`, `volumes`, `restart`,
//! `log_driver`, `limits`, `network` and `keep_images`, checked as strictly as the
//! rest of the file (the engine would otherwise reject them mid-deploy, or worse,
//! accept a typo). The other runtime's keys on a docker service are errors.

use std::path::Path;

use toml::Spanned;

use super::invalid::Invalid;
use super::raw::{RawLimits, RawService};
use super::values::bytes;
use crate::spec::{DockerLimits, DockerSpec, RuntimeSpec};

/// The restart policy when `restart` is not set (`--restart always`, as the classic blue-green script runs containers).
pub(super) const DEFAULT_RESTART: &str = "always";
/// Images pruning never removes: the latest this many a service deployed.
pub(super) const DEFAULT_KEEP_IMAGES: usize = 3;
const MAX_KEEP_IMAGES: i64 = 100;
/// The engine refuses memory limits below 6 MiB.
const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// The docker settings of service `name`.
pub(super) fn docker(
    name: &Spanned<String>,
    raw: &RawService,
    base: &Path,
) -> Result<RuntimeSpec, Invalid> {
    let section = format!("services.{}", name.get_ref());
    let Some(image) = &raw.image else {
        return Err(Invalid::at(
            name,
            format!(
                "service {:?} uses the docker runtime but has no image, e.g. image = \"uptimer:{{version}}\"",
                name.get_ref()
            ),
        ));
    };
    let Some(port) = &raw.port else {
        return Err(Invalid::at(
            name,
            format!(
                "service {:?} uses the docker runtime but has no port: the port the app listens on inside the container, e.g. port = 8080",
                name.get_ref()
            ),
        ));
    };
    let port = match u16::try_from(*port.get_ref()) {
        Ok(p) if p > 0 => p,
        _ => {
            return Err(Invalid::at(
                port,
                format!(
                    "{section}.port must be between 1 and 65535 (got {})",
                    port.get_ref()
                ),
            ));
        }
    };
    let command = match &raw.command {
        Some(command) if command.get_ref().is_empty() => {
            return Err(Invalid::at(
                command,
                format!("{section}.command is empty; leave it out to run the image's CMD"),
            ));
        }
        Some(command) => {
            super::command::service_command(command, &format!("{section}.command"))?;
            Some(command.get_ref().clone())
        }
        None => None,
    };
    let mut volumes = Vec::new();
    for volume in raw.volumes.iter().flatten() {
        volumes.push(self::volume(volume, &section, base)?);
    }
    let keep_images = match &raw.keep_images {
        None => DEFAULT_KEEP_IMAGES,
        Some(n) if (1..=MAX_KEEP_IMAGES).contains(n.get_ref()) => *n.get_ref() as usize,
        Some(n) => {
            return Err(Invalid::at(
                n,
                format!(
                    "{section}.keep_images must be between 1 and {MAX_KEEP_IMAGES} (got {})",
                    n.get_ref()
                ),
            ));
        }
    };
    Ok(RuntimeSpec::Docker(DockerSpec {
        image: self::image(image, &section)?,
        port,
        command,
        volumes,
        restart: match &raw.restart {
            Some(restart) => self::restart(restart, &section)?,
            None => DEFAULT_RESTART.into(),
        },
        log_driver: match &raw.log_driver {
            Some(driver) => Some(self::log_driver(driver, &section)?),
            None => None,
        },
        limits: match &raw.limits {
            Some(limits) => self::limits(limits.get_ref(), &section)?,
            None => DockerLimits::default(),
        },
        network: match &raw.network {
            Some(network) => Some(self::network(network, &section)?),
            None => None,
        },
        keep_images,
    }))
}

/// The first docker-only key a process service sets, as an error.
pub(super) fn reject_docker_keys(raw: &RawService, section: &str) -> Result<(), Invalid> {
    let only = |key: &str| format!("{section}.{key} is for the docker runtime");
    if let Some(image) = &raw.image {
        return Err(Invalid::at(
            image,
            format!(
                "{}; this service uses the process runtime (set command instead)",
                only("image")
            ),
        ));
    }
    if let Some(port) = &raw.port {
        return Err(Invalid::at(
            port,
            format!(
                "{}; the process runtime picks a free port and passes it as PORT and {{port}}",
                only("port")
            ),
        ));
    }
    let spans = [
        (
            "volumes",
            raw.volumes
                .as_ref()
                .and_then(|v| v.first())
                .map(Spanned::span),
        ),
        ("restart", raw.restart.as_ref().map(Spanned::span)),
        ("log_driver", raw.log_driver.as_ref().map(Spanned::span)),
        ("limits", raw.limits.as_ref().map(Spanned::span)),
        ("network", raw.network.as_ref().map(Spanned::span)),
        ("keep_images", raw.keep_images.as_ref().map(Spanned::span)),
    ];
    if let Some((key, span)) = spans.into_iter().find_map(|(k, s)| s.map(|s| (k, s))) {
        return Err(Invalid {
            span: Some(span),
            message: format!(
                "{}; set runtime = \"docker\" to use it, or remove it",
                only(key)
            ),
        });
    }
    Ok(())
}

/// An image reference such as `registry:5000/team/app:{version}` or `app@sha256:...`.
/// Checked with a sample version in place of `{version}`.
fn image(value: &Spanned<String>, section: &str) -> Result<String, Invalid> {
    let text = value.get_ref();
    let bad = |why: &str| Invalid::at(value, format!("invalid {section}.image {text:?}: {why}"));
    let sample = text.replace("{version}", "1.0.0");
    if sample.contains('{') || sample.contains('}') {
        return Err(bad("the only placeholder is {version}"));
    }
    if sample.is_empty() || sample.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it must be a non-empty reference without spaces"));
    }
    let (name, digest) = match sample.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (sample.as_str(), None),
    };
    if let Some(digest) = digest {
        let hex = digest.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad("a digest must be sha256: and 64 hex digits"));
        }
    }
    // A tag follows the last ':' unless that ':' belongs to a registry host:port.
    let (repository, tag) = match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (name, None),
    };
    if let Some(tag) = tag {
        let ok = (1..=128).contains(&tag.len())
            && !tag.starts_with(['.', '-'])
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(bad(
                "a tag is 1-128 letters, digits, '_', '.' or '-' (a {version} must fit that too)",
            ));
        }
    }
    let mut parts: Vec<&str> = repository.split('/').collect();
    // A first part with a '.' or ':' (or "localhost") is a registry host.
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        parts.remove(0);
    }
    let component_ok = |part: &str| {
        !part.is_empty()
            && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && part.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
    };
    if !parts.iter().all(|p| component_ok(p)) {
        return Err(bad(
            "repository names are lowercase letters, digits and '.', '_', '-' separated by '/'",
        ));
    }
    Ok(text.clone())
}

/// `SOURCE:TARGET[:ro|rw]`; a relative SOURCE path (`./data`) is made absolute
/// against the file's directory, a bare name is a named volume.
fn volume(value: &Spanned<String>, section: &str, base: &Path) -> Result<String, Invalid> {
    let text = value.get_ref();
    let bad = |why: &str| {
        Invalid::at(
            value,
            format!(
                "invalid {section}.volumes entry {text:?}: {why}; write SOURCE:TARGET or SOURCE:TARGET:ro"
            ),
        )
    };
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [s, t] => (*s, *t, None),
        [s, t, m] => (*s, *t, Some(*m)),
        _ => return Err(bad("expected two or three ':'-separated parts")),
    };
    if !target.starts_with('/') {
        return Err(bad("the target must be an absolute path in the container"));
    }
    if let Some(mode) = mode
        && !matches!(mode, "ro" | "rw")
    {
        return Err(bad("the mode must be \"ro\" or \"rw\""));
    }
    let is_path = source.starts_with(['/', '.', '~']) || source.contains('/');
    let source = if is_path {
        if source.starts_with('~') {
            return Err(bad(
                "'~' is not expanded; give an absolute or relative path",
            ));
        }
        base.join(source).to_string_lossy().into_owned()
    } else {
        let ok = source.starts_with(|c: char| c.is_ascii_alphanumeric())
            && source
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(bad(
                "a volume name is letters, digits, '_', '.' and '-'; a host path starts with '/' or '.'",
            ));
        }
        source.to_string()
    };
    Ok(match mode {
        Some(mode) => format!("{source}:{target}:{mode}"),
        None => format!("{source}:{target}"),
    })
}

fn restart(value: &Spanned<String>, section: &str) -> Result<String, Invalid> {
    let text = value.get_ref();
    let ok = match text.as_str() {
        "no" | "always" | "unless-stopped" | "on-failure" => true,
        other => other
            .strip_prefix("on-failure:")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n > 0),
    };
    if ok {
        Ok(text.clone())
    } else {
        Err(Invalid::at(
            value,
            format!(
                "invalid {section}.restart {text:?}; expected \"always\", \"unless-stopped\", \"on-failure\", \"on-failure:N\" or \"no\""
            ),
        ))
    }
}

fn log_driver(value: &Spanned<String>, section: &str) -> Result<String, Invalid> {
    let text = value.get_ref();
    let ok = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | ':'));
    if ok {
        Ok(text.clone())
    } else {
        Err(Invalid::at(
            value,
            format!(
                "invalid {section}.log_driver {text:?}: give a driver name such as \"journald\", \"local\" or \"json-file\""
            ),
        ))
    }
}

fn network(value: &Spanned<String>, section: &str) -> Result<String, Invalid> {
    let text = value.get_ref();
    if matches!(text.as_str(), "host" | "none" | "bridge" | "default") {
        return Err(Invalid::at(
            value,
            format!(
                "{section}.network = {text:?}: name a user-defined network (`docker network create NAME`); containers are on the default bridge already"
            ),
        ));
    }
    let ok = text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(text.clone())
    } else {
        Err(Invalid::at(
            value,
            format!("invalid {section}.network {text:?}: use letters, digits, '_', '.' and '-'"),
        ))
    }
}

fn limits(raw: &RawLimits, section: &str) -> Result<DockerLimits, Invalid> {
    let memory = match &raw.memory {
        Some(memory) => {
            let bytes = bytes(memory.get_ref()).ok_or_else(|| {
                Invalid::at(
                    memory,
                    format!(
                        "invalid {section}.limits.memory {:?}: write e.g. \"512m\" or \"1g\" (k, m, g are powers of 1024)",
                        memory.get_ref()
                    ),
                )
            })?;
            if bytes < MIN_MEMORY {
                return Err(Invalid::at(
                    memory,
                    format!("{section}.limits.memory must be at least 6m (the engine's minimum)"),
                ));
            }
            Some(bytes)
        }
        None => None,
    };
    let cpus = match &raw.cpus {
        Some(cpus) => {
            let n = cpus.get_ref().as_f64();
            if !(n.is_finite() && (0.01..=1024.0).contains(&n)) {
                return Err(Invalid::at(
                    cpus,
                    format!("{section}.limits.cpus must be between 0.01 and 1024 (got {n})"),
                ));
            }
            Some(n)
        }
        None => None,
    };
    Ok(DockerLimits { memory, cpus })
}

#[cfg(test)]
mod tests;
