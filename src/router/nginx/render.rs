//! Route table → nginx config text. Pure functions: nothing here touches disk.
//!
//! The `http`-level part (`render_http`) is the same in both modes: it is
//! `teal.conf` in system mode, and the body of the `http` block of the managed
//! `nginx.conf` (`render_main`). Every name teal defines starts with `teal_`, and
//! the proxy settings live inside teal's own `location` blocks, so an include in
//! a system nginx never changes anyone else's servers. The HTTPS side (TLS
//! servers, the default server that refuses unknown names, the redirect and
//! the ACME challenge location of the plain listener) is in `render/tls.rs`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::quote;
use super::routes::{RouteSet, ServiceRoute};
use crate::router::Backend;

mod maintenance;
mod tls;

use maintenance::production_location;

/// Idle upstream connections each worker keeps per upstream.
const UPSTREAM_KEEPALIVE: usize = 32;
/// Idle upstream connections are closed after this; below the apps' own
/// keep-alive timeout (often 5 s), like the builtin proxy's upstream pool.
const UPSTREAM_IDLE: Duration = Duration::from_secs(2);
/// How long a client may take to send a request head (and, over TLS with
/// keep-alive off, its first HTTP/2 request).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The old generation's shortest grace when no service asks for one.
const MIN_SHUTDOWN: Duration = Duration::from_secs(1);

/// What the generated config needs besides the routes.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The production listener (`proxy.listen`).
    pub listen: SocketAddr,
    /// Client keep-alive idle timeout; zero: no client keep-alive.
    pub keepalive_timeout: Duration,
    /// Included in every server block teal generates.
    pub include: Option<PathBuf>,
    /// `[proxy.tls]`: the TLS listener; None: plain HTTP only.
    pub tls: Option<TlsSettings>,
    /// The directory ACME HTTP-01 challenge files are served from, on the
    /// plain listener, for every Host: `WEBROOT/.well-known/acme-challenge/TOKEN`.
    pub webroot: PathBuf,
}

/// The TLS listener, as nginx is told to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    pub listen: SocketAddr,
    /// Plain-HTTP requests for a TLS service get 308 to https (but ACME challenges).
    pub redirect: bool,
    /// `http2 on;` (nginx 1.25.1+) instead of `listen ... ssl http2`.
    pub http2_directive: bool,
}

/// The managed master's own settings: the main config around the http part.
#[derive(Debug, Clone, PartialEq)]
pub struct MainSettings {
    /// `state_dir/nginx`: pid file, error log and temp dirs live here.
    pub dir: PathBuf,
    /// `worker_processes`; None: `auto`.
    pub workers: Option<usize>,
    /// The `user` directive (`NAME GROUP`), set only when teal runs as root:
    /// the workers then run as an unprivileged user.
    pub user: Option<String>,
    /// Where the temp dirs (`client_body`, `proxy`, ...) are.
    pub temp: PathBuf,
}

/// The full managed `nginx.conf`.
pub fn render_main(main: &MainSettings, routes: &RouteSet, settings: &Settings) -> String {
    let dir = &main.dir;
    let tmp = |name: &str| quote(&main.temp.join(name));
    let mut out = String::new();
    out.push_str(
        "# nginx.conf of teal's managed nginx, generated on every route change: do not edit.\n",
    );
    out.push_str("daemon off;\nmaster_process on;\n");
    match main.workers {
        Some(n) => writeln!(out, "worker_processes {n};"),
        None => writeln!(out, "worker_processes auto;"),
    }
    .ok();
    if let Some(user) = &main.user {
        writeln!(out, "user {user};").ok();
    }
    writeln!(out, "pid {};", quote(&pid_file(dir))).ok();
    writeln!(out, "error_log {} notice;", quote(&error_log(dir))).ok();
    writeln!(
        out,
        "# Old workers keep in-flight requests this long after a reload: the longest drain.timeout.\nworker_shutdown_timeout {};",
        nginx_time(shutdown_timeout(routes))
    )
    .ok();
    out.push_str("events {\n    worker_connections 4096;\n}\n\nhttp {\n");
    out.push_str("    access_log off;\n");
    for (directive, name) in [
        ("client_body_temp_path", "client_body"),
        ("proxy_temp_path", "proxy"),
        ("fastcgi_temp_path", "fastcgi"),
        ("uwsgi_temp_path", "uwsgi"),
        ("scgi_temp_path", "scgi"),
    ] {
        writeln!(out, "    {directive} {};", tmp(name)).ok();
    }
    out.push_str("    # Host names may be up to 253 characters long.\n");
    out.push_str("    server_names_hash_bucket_size 512;\n\n");
    for line in render_http(routes, settings).lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            writeln!(out, "    {line}").ok();
        }
    }
    out.push_str("}\n");
    out
}

/// The `http`-level part: the upgrade map, upstreams and servers.
pub fn render_http(routes: &RouteSet, settings: &Settings) -> String {
    let mut out = String::new();
    out.push_str(
        "# Generated by teal (router = \"nginx\") on every route change: do not edit.\n\n",
    );
    out.push_str(
        "map $http_upgrade $teal_connection_upgrade {\n    default upgrade;\n    ''      '';\n}\n",
    );
    for service in routes.services.values() {
        let backends = [&service.live, &service.staged];
        for (i, backend) in backends.iter().enumerate() {
            let Some(backend) = backend else { continue };
            // Production and preview on the same slot share its upstream.
            let duplicate = backends[..i]
                .iter()
                .any(|b| b.as_ref().is_some_and(|b| b.slot == backend.slot));
            if !duplicate {
                upstream(&mut out, service, backend);
            }
        }
    }
    let listen = settings.listen;
    for service in routes.services.values() {
        let default = service.hosts.is_empty();
        writeln!(
            out,
            "\n# {}: production ({})",
            service.name,
            describe(service.live.as_ref())
        )
        .ok();
        out.push_str("server {\n");
        if default {
            writeln!(
                out,
                "    listen {listen} default_server;\n    server_name _;"
            )
            .ok();
        } else {
            writeln!(
                out,
                "    listen {listen};\n    server_name {};",
                service.hosts.join(" ")
            )
            .ok();
        }
        server_settings(&mut out, settings, false);
        tls::challenge_location(&mut out, settings, CHALLENGE_FALLBACK);
        match tls::redirect_port(service, settings) {
            Some(port) => tls::redirect_location(&mut out, port),
            None => production_location(&mut out, "/", service),
        }
        proxy_location(&mut out, CHALLENGE_FALLBACK, service, service.live.as_ref());
        out.push_str("}\n");

        if let Some(preview) = service.preview {
            writeln!(
                out,
                "\n# {}: preview ({})",
                service.name,
                describe(service.staged.as_ref())
            )
            .ok();
            out.push_str("server {\n");
            writeln!(
                out,
                "    listen {preview} default_server;\n    server_name _;"
            )
            .ok();
            server_settings(&mut out, settings, false);
            proxy_location(&mut out, "/", service, service.staged.as_ref());
            out.push_str("}\n");
        }
        tls::https_server(&mut out, service, settings);
    }
    if routes.default_service().is_none() {
        // Nothing installed yet: unavailable. Otherwise an unknown Host: not found,
        // so teal is never an open proxy. ACME challenges are answered whatever the Host.
        let status = if routes.services.is_empty() { 503 } else { 404 };
        writeln!(
            out,
            "\n# no default service: a Host no service claims gets {status}\nserver {{\n    listen {listen} default_server;\n    server_name _;"
        )
        .ok();
        tls::challenge_location(&mut out, settings, &format!("={status}"));
        writeln!(
            out,
            "    location / {{\n        return {status};\n    }}\n}}"
        )
        .ok();
    }
    tls::unknown_names_server(&mut out, settings);
    out
}

/// The name of a slot's upstream.
pub fn upstream_name(service: &str, backend: &Backend) -> String {
    format!("teal_{service}_{}", backend.slot)
}

/// How long old workers may keep connections after a reload.
pub fn shutdown_timeout(routes: &RouteSet) -> Duration {
    routes
        .services
        .values()
        .map(|s| s.drain_timeout)
        .max()
        .unwrap_or(Duration::from_secs(10))
        .max(MIN_SHUTDOWN)
}

pub fn pid_file(dir: &Path) -> PathBuf {
    dir.join("nginx.pid")
}

pub fn error_log(dir: &Path) -> PathBuf {
    dir.join("error.log")
}

fn upstream(out: &mut String, service: &ServiceRoute, backend: &Backend) {
    writeln!(
        out,
        "\nupstream {} {{",
        upstream_name(&service.name, backend)
    )
    .ok();
    for addr in &backend.addrs {
        writeln!(out, "    server {addr};").ok();
    }
    writeln!(
        out,
        "    keepalive {UPSTREAM_KEEPALIVE};\n    keepalive_timeout {};\n}}",
        nginx_time(UPSTREAM_IDLE)
    )
    .ok();
}

/// Where a plain-listener challenge request goes when teal has no file for
/// it: the app (which may answer its own challenges), or whatever `/` does.
const CHALLENGE_FALLBACK: &str = "@teal_app";

/// The client-side settings every server teal generates shares. With client
/// keep-alive off, a TLS server (HTTP/2 too) serves one request per connection
/// with `keepalive_requests 1` instead of `keepalive_timeout 0`: nginx uses
/// `keepalive_timeout` as HTTP/2's idle timeout, and 0 would end an h2
/// connection (GOAWAY) before its first request arrives.
fn server_settings(out: &mut String, settings: &Settings, over_tls: bool) {
    let keepalive = match (settings.keepalive_timeout.is_zero(), over_tls) {
        (false, _) => nginx_time(settings.keepalive_timeout),
        (true, false) => "0".to_string(),
        (true, true) => format!("{};\n    keepalive_requests 1", nginx_time(HEADER_TIMEOUT)),
    };
    writeln!(
        out,
        "    keepalive_timeout {keepalive};\n    client_header_timeout {};\n    large_client_header_buffers 4 16k;\n    client_max_body_size 0;",
        nginx_time(HEADER_TIMEOUT)
    )
    .ok();
    if let Some(include) = &settings.include {
        writeln!(out, "    include {};", quote(include)).ok();
    }
}

/// `location WHERE` (a prefix, or a named location) proxying to `backend`,
/// or answering 503 when there is none; with the service's `max_body` (the
/// servers say 0, no limit).
fn proxy_location(out: &mut String, at: &str, service: &ServiceRoute, backend: Option<&Backend>) {
    writeln!(out, "    location {at} {{").ok();
    location_body(out, service, backend);
    out.push_str("    }\n");
}

/// What a location proxying to `backend` holds (`return 503` without one),
/// with the service's body limit.
fn location_body(out: &mut String, service: &ServiceRoute, backend: Option<&Backend>) {
    if let Some(max) = service.max_body {
        writeln!(out, "        client_max_body_size {max};").ok();
    }
    match backend {
        None => out.push_str("        return 503;\n"),
        Some(backend) => {
            writeln!(
                out,
                "        proxy_pass http://{};",
                upstream_name(&service.name, backend)
            )
            .ok();
            out.push_str(PROXY_SETTINGS);
        }
    }
}

/// The builtin proxy's behaviour in nginx terms: HTTP/1.1 with keep-alive to the
/// instances, websocket upgrades, X-Forwarded-* (`$scheme`: `https` on the TLS
/// listener), the client's Host, one retry on another instance when connecting
/// fails (never for non-idempotent requests).
const PROXY_SETTINGS: &str = "        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $http_host;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $teal_connection_upgrade;
        proxy_connect_timeout 2s;
        proxy_send_timeout 300s;
        proxy_read_timeout 300s;
        proxy_next_upstream error timeout;
        proxy_next_upstream_tries 2;
";

fn describe(backend: Option<&Backend>) -> String {
    match backend {
        Some(b) => format!("{}, {} instance(s)", b.slot, b.addrs.len()),
        None => "no backend: 503".into(),
    }
}

/// A duration as nginx reads it, in milliseconds.
fn nginx_time(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}
