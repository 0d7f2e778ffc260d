//! The nginx router's route table: per service, its hosts, preview address, and
//! the backends production and preview point at. `render` turns it into config.
//!
//! Everything that reaches the generated config is checked here, whether it came
//! from `teal.toml` or over the control API: service names and hosts by a strict
//! character set, so no value can close a directive and inject another. Addresses
//! are typed (`SocketAddr`) and versions never reach the config; certificate
//! paths are checked as every path teal writes into the config is (`check_path`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::check_path;
use super::render::Settings;
use crate::router::{Backend, RouterError};
use crate::spec::{ServiceSpec, TlsFiles};

/// What nginx needs to know about one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRoute {
    pub name: String,
    /// Lowercased; empty for the default service.
    pub hosts: Vec<String>,
    pub preview: Option<SocketAddr>,
    /// Production goes here; None answers 503.
    pub live: Option<Backend>,
    /// The preview listener goes here; None answers 503.
    pub staged: Option<Backend>,
    /// The service's `drain.timeout`: old workers get at least this long.
    pub drain_timeout: Duration,
    /// Its certificate files (`spec.tls`): a TLS server on the TLS listener.
    pub tls: Option<TlsFiles>,
    /// `max_body`: nginx's `client_max_body_size` in its locations.
    pub max_body: Option<u64>,
    /// `teal maintenance`: production answers 503 (per host, or all).
    pub maintenance: Vec<MaintenanceRoute>,
    /// `protocol = "h2c"`: proxied with `grpc_pass` (HTTP/2 to the instances).
    pub h2c: bool,
}

/// One maintenance as nginx renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceRoute {
    /// Checked as every host; None: every host of the service.
    pub host: Option<String>,
    /// The 503's body, checked by [`maintenance_text`].
    pub text: String,
    pub retry_after: u32,
}

/// Every service the router knows, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteSet {
    pub services: BTreeMap<String, ServiceRoute>,
}

impl RouteSet {
    /// A copy where `spec`'s routes are replaced, or why that is impossible (bad
    /// names, a second default service, a host claimed twice, a listener clash,
    /// a certificate without a TLS listener or with an unquotable path).
    pub fn with(
        &self,
        spec: &ServiceSpec,
        live: Option<Backend>,
        staged: Option<Backend>,
        settings: &Settings,
    ) -> Result<RouteSet, RouterError> {
        let listen = settings.listen;
        check_service_name(&spec.name)?;
        let mut hosts = Vec::new();
        for host in &spec.hosts {
            hosts.push(check_host(host)?);
        }
        hosts.sort();
        hosts.dedup();
        if let Some(preview) = spec.preview {
            if preview.port() == 0 {
                return Err(RouterError::Invalid(format!(
                    "service {:?}: preview {preview} uses port 0, which router = \"nginx\" does not support (nginx cannot tell teal which port it picked)",
                    spec.name
                )));
            }
            if preview == listen {
                return Err(RouterError::Conflict(format!(
                    "service {:?}: preview {preview} is the production listener",
                    spec.name
                )));
            }
            if settings
                .tls
                .as_ref()
                .is_some_and(|tls| tls.listen == preview)
            {
                return Err(RouterError::Conflict(format!(
                    "service {:?}: preview {preview} is the TLS listener",
                    spec.name
                )));
            }
        }
        let tls = check_tls(spec, settings)?;
        let empty = |b: Option<Backend>| b.filter(|b| !b.addrs.is_empty());
        let (live, staged) = (empty(live), empty(staged));
        if let (Some(live), Some(staged)) = (&live, &staged)
            && live.slot == staged.slot
            && live.addrs != staged.addrs
        {
            return Err(RouterError::Invalid(format!(
                "service {:?}: production and preview name slot {} with different instances",
                spec.name, live.slot
            )));
        }
        for other in self.services.values().filter(|o| o.name != spec.name) {
            if hosts.is_empty() && other.hosts.is_empty() {
                return Err(RouterError::Conflict(format!(
                    "services {:?} and {:?} both have no hosts: only one default service is allowed",
                    other.name, spec.name
                )));
            }
            if let Some(host) = hosts.iter().find(|h| other.hosts.contains(h)) {
                return Err(RouterError::Conflict(format!(
                    "host {host:?} is claimed by services {:?} and {:?}",
                    other.name, spec.name
                )));
            }
            if spec.preview.is_some() && other.preview == spec.preview {
                return Err(RouterError::Conflict(format!(
                    "services {:?} and {:?} both preview on {}",
                    other.name,
                    spec.name,
                    other.preview.map(|a| a.to_string()).unwrap_or_default()
                )));
            }
        }
        let mut next = self.clone();
        next.services.insert(
            spec.name.clone(),
            ServiceRoute {
                name: spec.name.clone(),
                hosts,
                preview: spec.preview,
                live,
                staged,
                drain_timeout: spec.drain.timeout,
                tls,
                max_body: spec.policy.max_body,
                maintenance: Vec::new(),
                h2c: !spec.protocol.is_http1(),
            },
        );
        Ok(next)
    }

    /// This table with each service's maintenance set from `maintenance`
    /// (by service name; absent: none).
    pub fn gated(mut self, maintenance: &BTreeMap<String, Vec<MaintenanceRoute>>) -> RouteSet {
        for service in self.services.values_mut() {
            service.maintenance = maintenance.get(&service.name).cloned().unwrap_or_default();
        }
        self
    }

    /// A copy where the certificate files of `spec`'s service are `spec.tls`,
    /// its routes otherwise unchanged; None when the service has no routes yet
    /// (its first `set_routes` brings the files).
    pub fn with_certificate(
        &self,
        spec: &ServiceSpec,
        settings: &Settings,
    ) -> Result<Option<RouteSet>, RouterError> {
        if !self.services.contains_key(&spec.name) {
            return Ok(None);
        }
        let tls = check_tls(spec, settings)?;
        let mut next = self.clone();
        if let Some(service) = next.services.get_mut(&spec.name) {
            service.tls = tls;
        }
        Ok(Some(next))
    }

    /// The service every Host no other service claims goes to.
    pub fn default_service(&self) -> Option<&ServiceRoute> {
        self.services.values().find(|s| s.hosts.is_empty())
    }
}

/// `spec.tls`, when nginx can serve it: a TLS listener exists, the service
/// has hosts (the names SNI picks it by), and both paths can be quoted.
fn check_tls(spec: &ServiceSpec, settings: &Settings) -> Result<Option<TlsFiles>, RouterError> {
    let Some(files) = &spec.tls else {
        return Ok(None);
    };
    if settings.tls.is_none() {
        return Err(RouterError::Invalid(format!(
            "service {:?} has a certificate but nginx has no TLS listener ([proxy.tls])",
            spec.name
        )));
    }
    if spec.hosts.is_empty() {
        return Err(RouterError::Invalid(format!(
            "service {:?} has a certificate but no hosts: TLS clients are sent to it by name",
            spec.name
        )));
    }
    for path in [&files.cert, &files.key] {
        check_path(path).map_err(|reason| {
            RouterError::Invalid(format!(
                "service {:?}: certificate file {}: {reason}",
                spec.name,
                path.display()
            ))
        })?;
    }
    Ok(Some(files.clone()))
}

/// Service names: `[a-z0-9][a-z0-9_-]{0,62}`, as `teal.toml` requires. They are
/// part of upstream names.
pub fn check_service_name(name: &str) -> Result<(), RouterError> {
    let mut chars = name.chars();
    let first = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if first && rest && name.len() <= 63 {
        Ok(())
    } else {
        Err(RouterError::Invalid(format!(
            "invalid service name {name:?} for nginx: use 1 to 63 lowercase letters, digits, '_' or '-'"
        )))
    }
}

/// A host for `server_name`: DNS labels of letters, digits and '-', returned
/// lowercased. Anything else (spaces, ';', quotes, '$', '~', '*') is refused.
/// A maintenance message as an nginx string's content: printable text with
/// none of the characters nginx would read as the string's end, an escape or
/// a variable; a newline is added.
pub fn maintenance_text(message: &str) -> Result<String, RouterError> {
    let message = message.trim_end_matches('\n');
    match message
        .chars()
        .find(|c| c.is_control() || matches!(c, '"' | '\\' | '$' | '\'' | '{' | '}' | ';'))
    {
        Some(c) => Err(RouterError::Invalid(format!(
            "the maintenance message cannot be given to nginx: it contains {c:?} (the builtin router takes any text)"
        ))),
        None => Ok(format!("{message}\\n")),
    }
}

pub fn check_host(host: &str) -> Result<String, RouterError> {
    let label = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !host.is_empty() && host.len() <= 253 && host.split('.').all(label) {
        Ok(host.to_ascii_lowercase())
    } else {
        Err(RouterError::Invalid(format!(
            "invalid host {host:?} for nginx: use DNS labels of letters, digits and '-'"
        )))
    }
}
