//! `[proxy.nginx]` → [`NginxSpec`], and what `router = "nginx"` cannot do.
//!
//! Managed-mode keys and system-mode keys exclude each other, so a config never
//! silently ignores half of its nginx section. Listeners on port 0 are refused
//! with nginx: nginx cannot tell teal which port it picked.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::conflicts::ServiceSite;
use super::invalid::Invalid;
use super::raw::RawNginx;
use super::values;
use crate::spec::{NginxSpec, RouterKind, ServiceSpec};

#[cfg(test)]
mod tests;

/// The most worker processes a managed nginx may be given.
const MAX_WORKERS: i64 = 256;

/// Resolves `[proxy.nginx]` (absent: the defaults).
pub(super) fn resolve(
    raw: Option<&Spanned<RawNginx>>,
    router: RouterKind,
    base: &Path,
) -> Result<NginxSpec, Invalid> {
    let defaults = NginxSpec::default();
    let Some(section) = raw else {
        return Ok(defaults);
    };
    if router != RouterKind::Nginx {
        return Err(Invalid::at(
            section,
            "[proxy.nginx] is only used with router = \"nginx\" (set [proxy] router = \"nginx\" or remove the section)",
        ));
    }
    let raw = section.get_ref();
    let binary = match &raw.binary {
        Some(binary) if binary.get_ref().contains('/') => {
            values::path(binary, "proxy.nginx.binary", base)?
        }
        Some(binary) if binary.get_ref().trim().is_empty() => {
            return Err(Invalid::at(binary, "proxy.nginx.binary must not be empty"));
        }
        Some(binary) => binary.get_ref().into(),
        None => defaults.binary,
    };
    let conf_dir = match &raw.conf_dir {
        Some(dir) => Some(config_path(dir, "proxy.nginx.conf_dir", base)?),
        None => None,
    };
    let system_only = [
        ("main_conf", raw.main_conf.as_ref().map(Spanned::span)),
        ("reload", raw.reload.as_ref().map(Spanned::span)),
        ("pid_file", raw.pid_file.as_ref().map(Spanned::span)),
    ];
    if conf_dir.is_none()
        && let Some((key, Some(span))) = system_only.iter().find(|(_, span)| span.is_some())
    {
        return Err(at(
            span.clone(),
            format!(
                "proxy.nginx.{key} is for system mode, where teal reloads an nginx it does not own; set proxy.nginx.conf_dir too, or remove it (managed mode runs its own nginx)"
            ),
        ));
    }
    if let (Some(_), Some(workers)) = (&conf_dir, &raw.workers) {
        return Err(Invalid::at(
            workers,
            "proxy.nginx.workers is for managed mode; in system mode the system nginx.conf sets worker_processes",
        ));
    }
    let workers = match &raw.workers {
        None => None,
        Some(n) if (1..=MAX_WORKERS).contains(n.get_ref()) => Some(*n.get_ref() as usize),
        Some(n) => {
            return Err(Invalid::at(
                n,
                format!(
                    "proxy.nginx.workers must be between 1 and {MAX_WORKERS} (got {})",
                    n.get_ref()
                ),
            ));
        }
    };
    let reload = match &raw.reload {
        None => None,
        Some(command) => match command.get_ref().first() {
            Some(program) if !program.trim().is_empty() => Some(command.get_ref().clone()),
            _ => {
                return Err(Invalid::at(
                    command,
                    "proxy.nginx.reload must start with a program, e.g. [\"systemctl\", \"reload\", \"nginx\"]",
                ));
            }
        },
    };
    Ok(NginxSpec {
        binary,
        conf_dir,
        main_conf: match &raw.main_conf {
            Some(file) => Some(config_path(file, "proxy.nginx.main_conf", base)?),
            None => None,
        },
        reload,
        pid_file: match &raw.pid_file {
            Some(file) => config_path(file, "proxy.nginx.pid_file", base)?,
            None => defaults.pid_file,
        },
        workers,
        keepalive_timeout: match &raw.keepalive_timeout {
            Some(value) => values::duration(value, "proxy.nginx.keepalive_timeout", true)?,
            None => defaults.keepalive_timeout,
        },
        include: match &raw.include {
            Some(file) => Some(config_path(file, "proxy.nginx.include", base)?),
            None => None,
        },
    })
}

/// With nginx, every listener needs a real port: nginx cannot report one it picked.
pub(super) fn check_ports(
    listen: std::net::SocketAddr,
    listen_span: Option<Range<usize>>,
    sites: &[ServiceSite],
) -> Result<(), Invalid> {
    let advice = "nginx cannot tell teal which port it picked; give a port";
    if listen.port() == 0 {
        return Err(at_or_nowhere(
            listen_span,
            format!(
                "proxy.listen {listen} uses port 0, which router = \"nginx\" does not support: {advice}"
            ),
        ));
    }
    for site in sites {
        if let Some((addr, span)) = &site.preview
            && addr.port() == 0
        {
            return Err(at(
                span.clone(),
                format!(
                    "services.{}.preview {addr} uses port 0, which router = \"nginx\" does not support: {advice}",
                    site.name
                ),
            ));
        }
    }
    Ok(())
}

/// `[proxy.tls] listen` with nginx: a real port too.
pub(super) fn check_tls_port(
    listen: std::net::SocketAddr,
    span: Option<Range<usize>>,
) -> Result<(), Invalid> {
    if listen.port() == 0 {
        return Err(at_or_nowhere(
            span,
            format!(
                "proxy.tls.listen {listen} uses port 0, which router = \"nginx\" does not support: nginx cannot tell teal which port it picked; give a port"
            ),
        ));
    }
    Ok(())
}

/// Certificate files with nginx: their paths are written into its config
/// (`ssl_certificate`), so they must be quotable there.
pub(super) fn check_cert_paths(
    services: &std::collections::BTreeMap<String, ServiceSpec>,
    sites: &[ServiceSite],
) -> Result<(), Invalid> {
    for site in sites {
        let Some(files) = services.get(&site.name).and_then(|s| s.tls.as_ref()) else {
            continue;
        };
        for path in [&files.cert, &files.key] {
            if let Err(reason) = crate::router::nginx::check_path(path) {
                return Err(at_or_nowhere(
                    site.tls.clone(),
                    format!("services.{}.tls: {reason}", site.name),
                ));
            }
        }
    }
    Ok(())
}

/// A path that ends up inside nginx's config: absolute, and quotable there.
fn config_path(
    value: &Spanned<String>,
    what: &str,
    base: &Path,
) -> Result<std::path::PathBuf, Invalid> {
    let path = values::path(value, what, base)?;
    if let Err(reason) = crate::router::nginx::check_path(&path) {
        return Err(Invalid::at(value, format!("{what}: {reason}")));
    }
    Ok(path)
}

fn at(span: Range<usize>, message: String) -> Invalid {
    Invalid {
        span: Some(span),
        message,
    }
}

fn at_or_nowhere(span: Option<Range<usize>>, message: String) -> Invalid {
    Invalid { span, message }
}
