//! Raw `teal.toml` → [`Config`]: defaults, validation, absolute paths.
//!
//! Services are resolved in file order, so an error about two values that clash
//! always points at the later one. Defaults come from the `Default` impls in
//! [`crate::spec`]; the ones that depend on the file's location are set here.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::conflicts::{self, Listener, ServiceSite};
use super::hooks;
use super::invalid::Invalid;
use super::raw::{RawConfig, RawDrain, RawHealth, RawProxy, RawService};
use super::{docker, env, nginx, policy, protocol, tls, values};
use crate::spec::{
    AccessLogTarget, Config, DrainSpec, HealthSpec, Protocol, ProxySpec, RouterKind, RuntimeSpec,
    ServiceSpec, Underscores,
};

/// `state_dir` when the file does not set it, relative to the file's directory.
pub const DEFAULT_STATE_DIR: &str = ".teal";
/// The production listener when `[proxy] listen` is not set.
pub(super) const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The control socket's file name inside `state_dir`, when `[proxy] control` is not set.
pub(super) const CONTROL_SOCKET: &str = "teal.sock";
/// Unix socket paths are limited to `sun_path`: 108 bytes including the NUL.
const MAX_SOCKET_PATH: usize = 107;
/// The most instances one slot may run.
const MAX_INSTANCES: i64 = 64;
/// Upper bound for `proxy.upstream_idle_timeout`: an idle connection kept
/// longer than any app keeps one open is only ever found closed.
const MAX_UPSTREAM_IDLE: Duration = Duration::from_secs(3600);
/// Upper bound for `proxy.response_timeout`: a request is not worth holding a
/// client for longer than a day.
const MAX_RESPONSE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Upper bound for `proxy.body_timeout` and `proxy.send_timeout`: a peer that
/// moves nothing for a day is gone.
const MAX_STALL_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Upper bound for `proxy.body_buffer`: held in memory per request.
const MAX_BODY_BUFFER: u64 = 16 << 20;

/// Upper bound for `proxy.max_concurrent_streams` (nginx's default is 128).
const MAX_CONCURRENT_STREAMS: u32 = 10_000;

/// Upper bound for `proxy.workers`.
const MAX_PROXY_WORKERS: usize = 256;

/// Validates `raw`, read from `file` (an absolute path).
pub(super) fn resolve(raw: RawConfig, file: &Path) -> Result<Config, Invalid> {
    let base = file.parent().unwrap_or(Path::new("/"));
    let state_dir = match &raw.state_dir {
        Some(dir) => values::path(dir, "state_dir", base)?,
        None => base.join(DEFAULT_STATE_DIR),
    };
    let raw_proxy = raw.proxy.unwrap_or_default();
    let proxy = proxy(&raw_proxy, &state_dir, base)?;
    if proxy.control.as_os_str().len() > MAX_SOCKET_PATH {
        let message = format!(
            "control socket path {} is {} bytes long; unix sockets allow at most {MAX_SOCKET_PATH} (set [proxy] control to a shorter path)",
            proxy.control.display(),
            proxy.control.as_os_str().len(),
        );
        let near = raw_proxy.control.as_ref().or(raw.state_dir.as_ref());
        return Err(match near {
            Some(value) => Invalid::at(value, message),
            None => Invalid::nowhere(message),
        });
    }

    let mut raw_services: Vec<_> = raw.services.unwrap_or_default().into_iter().collect();
    raw_services.sort_by_key(|(name, _)| name.span().start);
    let mut services = BTreeMap::new();
    let mut sites = Vec::new();
    for (name, raw) in raw_services {
        let policy = policy::service(&raw, &raw_proxy, name.get_ref(), base, proxy.router)?;
        let (mut spec, site) = service(&name, raw, base)?;
        spec.policy = policy;
        sites.push(site);
        services.insert(name.into_inner(), spec);
    }

    let listen = Listener {
        name: "proxy.listen",
        what: "proxy.listen".into(),
        addr: proxy.listen,
        span: raw_proxy.listen.as_ref().map(Spanned::span),
    };
    let admin = proxy.admin.map(|addr| Listener {
        name: "proxy.admin",
        what: "proxy.admin".into(),
        addr,
        span: raw_proxy.admin.as_ref().map(Spanned::span),
    });
    let tls_listen = proxy.tls.as_ref().map(|tls| Listener {
        name: "proxy.tls.listen",
        what: "proxy.tls.listen".into(),
        addr: tls.listen,
        span: raw_proxy
            .tls
            .as_ref()
            .and_then(|tls| tls.get_ref().listen.as_ref())
            .map(Spanned::span),
    });
    conflicts::check(&listen, [&admin, &tls_listen], &sites)?;
    if let Some(site) = sites.iter().find(|site| site.tls.is_some()) {
        let span = site.tls.clone();
        if proxy.tls.is_none() {
            return Err(Invalid {
                span,
                message: format!(
                    "services.{}.tls needs the TLS listener: add [proxy.tls] with listen = \"0.0.0.0:443\"",
                    site.name
                ),
            });
        }
    }
    if proxy.router == RouterKind::Nginx {
        protocol::nginx_reaches_h2c(&services, &sites)?;
    }
    let no_account = proxy.tls.as_ref().is_some_and(|tls| tls.acme.is_none());
    if let Some(acme) = services.values().find(|spec| spec.acme)
        && no_account
    {
        let at = raw_proxy.tls.as_ref().map(Spanned::span);
        return Err(Invalid {
            span: at,
            message: format!(
                "services.{}.tls = \"acme\" needs acme_email in [proxy.tls]: the ACME account's contact, e.g. acme_email = \"ops@example.com\"",
                acme.name
            ),
        });
    }
    if proxy.router == RouterKind::Nginx {
        nginx::check_ports(proxy.listen, listen.span.clone(), &sites)?;
        if let Some(tls) = &tls_listen {
            nginx::check_tls_port(tls.addr, tls.span.clone())?;
        }
        nginx::check_cert_paths(&services, &sites)?;
        if let Err(reason) = crate::router::nginx::check_path(&state_dir) {
            let message = format!("state_dir (used in the nginx config teal writes): {reason}");
            return Err(match &raw.state_dir {
                Some(dir) => Invalid::at(dir, message),
                None => Invalid::nowhere(message),
            });
        }
    }

    Ok(Config {
        path: file.to_owned(),
        state_dir,
        proxy,
        services,
    })
}

fn proxy(raw: &RawProxy, state_dir: &Path, base: &Path) -> Result<ProxySpec, Invalid> {
    let listen = match &raw.listen {
        Some(listen) => values::socket_addr(listen, "proxy.listen")?,
        None => DEFAULT_LISTEN
            .parse()
            .expect("the default listen address parses"),
    };
    let router = match &raw.router {
        None => RouterKind::default(),
        Some(router) => match router.get_ref().as_str() {
            "builtin" => RouterKind::Builtin,
            "nginx" => RouterKind::Nginx,
            other => {
                return Err(Invalid::at(
                    router,
                    format!("unknown router {other:?}; expected \"builtin\" or \"nginx\""),
                ));
            }
        },
    };
    let control = match &raw.control {
        Some(control) => values::path(control, "proxy.control", base)?,
        None => state_dir.join(CONTROL_SOCKET),
    };
    let admin = match &raw.admin {
        Some(admin) => Some(values::socket_addr(admin, "proxy.admin")?),
        None => None,
    };
    let workers = match &raw.workers {
        None => None,
        Some(workers) => match usize::try_from(*workers.get_ref()) {
            Ok(n) if (1..=MAX_PROXY_WORKERS).contains(&n) => Some(n),
            _ => {
                return Err(Invalid::at(
                    workers,
                    format!(
                        "proxy.workers must be between 1 and {MAX_PROXY_WORKERS} (got {})",
                        workers.get_ref()
                    ),
                ));
            }
        },
    };
    let upstream_idle_timeout = builtin_timeout(
        raw.upstream_idle_timeout.as_ref(),
        router,
        "proxy.upstream_idle_timeout",
        "set proxy.nginx.keepalive_timeout",
        MAX_UPSTREAM_IDLE,
    )?;
    let response_timeout = builtin_timeout(
        raw.response_timeout.as_ref(),
        router,
        "proxy.response_timeout",
        "nginx's proxy_read_timeout is 300s",
        MAX_RESPONSE_TIMEOUT,
    )?;
    let body_buffer = body_buffer(raw.body_buffer.as_ref(), router)?;
    let body_timeout = builtin_timeout(
        raw.body_timeout.as_ref(),
        router,
        "proxy.body_timeout",
        "nginx's client_body_timeout is 60s",
        MAX_STALL_TIMEOUT,
    )?;
    let send_timeout = builtin_timeout(
        raw.send_timeout.as_ref(),
        router,
        "proxy.send_timeout",
        "nginx's send_timeout and proxy_send_timeout are 60s",
        MAX_STALL_TIMEOUT,
    )?;
    let max_concurrent_streams = max_streams(raw.max_concurrent_streams.as_ref(), router)?;
    let underscores_in_headers = underscores(raw.underscores_in_headers.as_ref(), router)?;
    let access_log = access_log(raw.access_log.as_ref(), router, base)?;
    let nginx = nginx::resolve(raw.nginx.as_ref(), router, base)?;
    let tls = tls::listener(raw.tls.as_ref(), base)?;
    Ok(ProxySpec {
        listen,
        router,
        control,
        admin,
        workers,
        upstream_idle_timeout,
        response_timeout,
        body_buffer,
        body_timeout,
        send_timeout,
        max_concurrent_streams,
        underscores_in_headers,
        access_log,
        nginx,
        tls,
    })
}

/// `proxy.access_log`: `"stdout"` or a path (relative to the file); the
/// builtin router writes it (nginx keeps its own access log).
fn access_log(
    value: Option<&Spanned<String>>,
    router: RouterKind,
    base: &Path,
) -> Result<Option<AccessLogTarget>, Invalid> {
    let Some(value) = value else {
        return Ok(None);
    };
    builtin_only(
        value,
        router,
        "proxy.access_log",
        "nginx writes its own access log (its access_log directive)",
    )?;
    if value.get_ref() == "stdout" {
        return Ok(Some(AccessLogTarget::Stdout));
    }
    let path = values::path(value, "proxy.access_log", base)?;
    if path.is_dir() {
        return Err(Invalid::at(
            value,
            format!(
                "proxy.access_log {} is a directory; name a file",
                path.display()
            ),
        ));
    }
    Ok(Some(AccessLogTarget::File(path)))
}

/// `proxy.underscores_in_headers`: builtin router only (nginx has its own
/// directive of that name, off by default: such headers are dropped).
fn underscores(
    value: Option<&Spanned<String>>,
    router: RouterKind,
) -> Result<Option<Underscores>, Invalid> {
    let Some(value) = value else {
        return Ok(None);
    };
    builtin_only(
        value,
        router,
        "proxy.underscores_in_headers",
        "nginx drops such headers (its underscores_in_headers is off)",
    )?;
    match value.get_ref().as_str() {
        "drop" => Ok(Some(Underscores::Drop)),
        "pass" => Ok(Some(Underscores::Pass)),
        "refuse" => Ok(Some(Underscores::Refuse)),
        other => Err(Invalid::at(
            value,
            format!(
                "unknown proxy.underscores_in_headers {other:?}; expected \"drop\" (the default), \"pass\" or \"refuse\""
            ),
        )),
    }
}

/// Refuses `key`, a `[proxy]` key only the builtin router has, with the
/// nginx router (`instead` says what applies there).
fn builtin_only<T>(
    value: &Spanned<T>,
    router: RouterKind,
    key: &str,
    instead: &str,
) -> Result<(), Invalid> {
    if router == RouterKind::Builtin {
        return Ok(());
    }
    Err(Invalid::at(
        value,
        format!("{key} is for the builtin router; with router = \"nginx\" {instead}"),
    ))
}

/// `proxy.body_buffer`: a size such as "64KiB" (zero: stream every body at
/// once), at most `MAX_BODY_BUFFER`.
fn body_buffer(
    value: Option<&Spanned<String>>,
    router: RouterKind,
) -> Result<Option<usize>, Invalid> {
    let Some(value) = value else {
        return Ok(None);
    };
    let key = "proxy.body_buffer";
    builtin_only(
        value,
        router,
        key,
        "nginx's client_body_buffer_size applies",
    )?;
    let text = value.get_ref();
    let Some(size) = values::bytes(text) else {
        return Err(Invalid::at(
            value,
            format!("invalid size {text:?} for {key}; write e.g. \"64KiB\" or \"1MiB\""),
        ));
    };
    if size > MAX_BODY_BUFFER {
        return Err(Invalid::at(
            value,
            format!("{key} must be at most 16MiB (got {text})"),
        ));
    }
    Ok(usize::try_from(size).ok())
}

/// `proxy.max_concurrent_streams`: builtin router only, 1 to the bound.
fn max_streams(value: Option<&Spanned<i64>>, router: RouterKind) -> Result<Option<u32>, Invalid> {
    let Some(value) = value else {
        return Ok(None);
    };
    if router != RouterKind::Builtin {
        return Err(Invalid::at(
            value,
            "proxy.max_concurrent_streams is for the builtin router; the nginx router does not serve HTTP/2",
        ));
    }
    match u32::try_from(*value.get_ref()) {
        Ok(n) if (1..=MAX_CONCURRENT_STREAMS).contains(&n) => Ok(Some(n)),
        _ => Err(Invalid::at(
            value,
            format!(
                "proxy.max_concurrent_streams must be between 1 and {MAX_CONCURRENT_STREAMS} (got {})",
                value.get_ref()
            ),
        )),
    }
}

/// A `[proxy]` duration only the builtin router has: refused with the nginx
/// router (`instead` says what applies there), more than zero, at most `max`.
fn builtin_timeout(
    value: Option<&Spanned<String>>,
    router: RouterKind,
    key: &str,
    instead: &str,
    max: Duration,
) -> Result<Option<Duration>, Invalid> {
    let Some(value) = value else {
        return Ok(None);
    };
    builtin_only(value, router, key, instead)?;
    let timeout = values::duration(value, key, false)?;
    if timeout > max {
        return Err(Invalid::at(
            value,
            format!(
                "{key} must be at most {} (got {})",
                humantime::format_duration(max),
                value.get_ref()
            ),
        ));
    }
    Ok(Some(timeout))
}

fn service(
    name: &Spanned<String>,
    raw: RawService,
    base: &Path,
) -> Result<(ServiceSpec, ServiceSite), Invalid> {
    values::service_name(name)?;
    let section = format!("services.{}", name.get_ref());
    let runtime = runtime(name, &raw, base)?;

    let instances = match &raw.instances {
        None => 1,
        Some(n) if (1..=MAX_INSTANCES).contains(n.get_ref()) => *n.get_ref() as usize,
        Some(n) => {
            return Err(Invalid::at(
                n,
                format!(
                    "{section}.instances must be between 1 and {MAX_INSTANCES} (got {})",
                    n.get_ref()
                ),
            ));
        }
    };
    let version = match &raw.version {
        Some(version) if version.get_ref().trim().is_empty() => {
            return Err(Invalid::at(
                version,
                format!("{section}.version must not be empty"),
            ));
        }
        Some(version) => Some(version.get_ref().clone()),
        None => None,
    };

    let mut hosts = Vec::new();
    for host in raw.hosts.iter().flatten() {
        hosts.push((values::host(host)?, host.span()));
    }
    let preview = match &raw.preview {
        Some(preview) => {
            let what = format!("{section}.preview");
            Some((values::socket_addr(preview, &what)?, preview.span()))
        }
        None => None,
    };
    let tls = match &raw.tls {
        Some(tls) => {
            let names: Vec<String> = hosts.iter().map(|(host, _)| host.clone()).collect();
            Some((tls::service(tls, &names, &section, base)?, tls.span()))
        }
        None => None,
    };
    let (env, secrets) = env::service_env(&raw, &section, base)?;

    let protocol = protocol::protocol(raw.protocol.as_ref(), &section)?;
    let spec = ServiceSpec {
        name: name.get_ref().clone(),
        runtime: runtime.clone(),
        instances,
        version,
        hosts: hosts.iter().map(|(host, _)| host.clone()).collect(),
        preview: preview.as_ref().map(|(addr, _)| *addr),
        env,
        secrets,
        workdir: base.to_owned(),
        health: health(raw.health.unwrap_or_default(), &section, protocol)?,
        drain: drain(raw.drain.unwrap_or_default(), &section)?,
        hooks: hooks::hooks(raw.hooks.unwrap_or_default(), &section, &runtime)?,
        verify: match raw.verify {
            Some(verify) => Some(hooks::verify(verify, &section)?),
            None => None,
        },
        tls: match &tls {
            Some((tls::ServiceTls::Files(files), _)) => Some(files.clone()),
            _ => None,
        },
        acme: matches!(tls, Some((tls::ServiceTls::Acme, _))),
        policy: Default::default(),
        protocol,
    };
    let site = ServiceSite {
        name: name.get_ref().clone(),
        name_span: name.span(),
        hosts,
        preview,
        tls: tls.map(|(_, span)| span),
    };
    Ok((spec, site))
}

/// The runtime and its settings. Settings of the other runtime are errors, so a
/// typo'd `runtime` never silently ignores half the section.
fn runtime(name: &Spanned<String>, raw: &RawService, base: &Path) -> Result<RuntimeSpec, Invalid> {
    let section = format!("services.{}", name.get_ref());
    let kind = raw
        .runtime
        .as_ref()
        .map_or("process", |r| r.get_ref().as_str());
    match kind {
        "process" => {
            docker::reject_docker_keys(raw, &section)?;
            let Some(command) = &raw.command else {
                return Err(Invalid::at(
                    name,
                    format!(
                        "service {:?} uses the process runtime but has no command, e.g. command = [\"./app\", \"--port\", \"{{port}}\"]",
                        name.get_ref()
                    ),
                ));
            };
            match command.get_ref().first() {
                None => Err(Invalid::at(
                    command,
                    format!("{section}.command is empty; give the program and its arguments"),
                )),
                Some(program) if program.trim().is_empty() => Err(Invalid::at(
                    command,
                    format!("{section}.command starts with an empty program name"),
                )),
                Some(_) => {
                    super::command::service_command(command, &format!("{section}.command"))?;
                    Ok(RuntimeSpec::Process {
                        command: command.get_ref().clone(),
                    })
                }
            }
        }
        "docker" => docker::docker(name, raw, base),
        other => Err(Invalid::at(
            raw.runtime
                .as_ref()
                .expect("an unknown runtime is named explicitly"),
            format!("unknown runtime {other:?}; expected \"process\" or \"docker\""),
        )),
    }
}

fn health(raw: RawHealth, section: &str, protocol: Protocol) -> Result<HealthSpec, Invalid> {
    let defaults = HealthSpec::default();
    let what = |field: &str| format!("{section}.health.{field}");
    let duration = |value: &Option<Spanned<String>>, field: &str, default| match value {
        Some(value) => values::duration(value, &what(field), false),
        None => Ok(default),
    };
    Ok(HealthSpec {
        path: match &raw.path {
            Some(path) => values::health_path(path, &what("path"))?,
            None => defaults.path,
        },
        interval: duration(&raw.interval, "interval", defaults.interval)?,
        timeout: duration(&raw.timeout, "timeout", defaults.timeout)?,
        deadline: duration(&raw.deadline, "deadline", defaults.deadline)?,
        grpc: protocol::grpc_health(raw.grpc.as_ref(), protocol, section)?,
        h2c: protocol == Protocol::H2c,
    })
}

fn drain(raw: RawDrain, section: &str) -> Result<DrainSpec, Invalid> {
    let defaults = DrainSpec::default();
    Ok(DrainSpec {
        // Zero is allowed: stop the old slot without waiting for in-flight requests.
        timeout: match &raw.timeout {
            Some(value) => values::duration(value, &format!("{section}.drain.timeout"), true)?,
            None => defaults.timeout,
        },
        keep_previous: raw.keep_previous.unwrap_or(defaults.keep_previous),
    })
}

#[cfg(test)]
mod tests;
