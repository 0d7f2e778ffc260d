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
/// How long an idle gRPC client connection stays open when client keep-alive
/// is off (nginx's own default `keepalive_timeout`).
const GRPC_KEEPALIVE: Duration = Duration::from_secs(75);
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
    /// nginx has `http2 on;` (1.25.1+) instead of `listen ... http2`.
    pub http2_directive: bool,
}

/// The TLS listener, as nginx is told to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    pub listen: SocketAddr,
    /// Plain-HTTP requests for a TLS service get 308 to https (but ACME challenges).
    pub redirect: bool,
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
        server_settings(&mut out, settings, Clients::Plain);
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
            preview_listen(&mut out, service, preview, settings);
            let clients = if service.h2c {
                Clients::Grpc
            } else {
                Clients::Plain
            };
            server_settings(&mut out, settings, clients);
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

/// The preview server's `listen`. An h2c service's preview speaks HTTP/2
/// with prior knowledge, as its clients (gRPC) do: the address is its own, so
/// nginx before 1.25.1 can make it h2c-only (`listen ... http2`), and newer
/// ones get `http2 on;`.
fn preview_listen(
    out: &mut String,
    service: &ServiceRoute,
    preview: SocketAddr,
    settings: &Settings,
) {
    let http2 = match (service.h2c, settings.http2_directive) {
        (false, _) => ("", ""),
        (true, false) => (" http2", ""),
        (true, true) => ("", "\n    http2 on;"),
    };
    writeln!(
        out,
        "    listen {preview}{} default_server;{}\n    server_name _;",
        http2.0, http2.1
    )
    .ok();
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

/// Who a server's clients are, for its keep-alive.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Clients {
    /// Plain HTTP/1.1.
    Plain,
    /// TLS: HTTP/1.1 or HTTP/2 by ALPN.
    Tls,
    /// gRPC (an h2c service's TLS server and preview): HTTP/2 connections that
    /// carry many calls, kept open even when client keep-alive is off.
    Grpc,
}

/// The client-side settings every server teal generates shares. With client
/// keep-alive off, a TLS server (HTTP/2 too) serves one request per connection
/// with `keepalive_requests 1` instead of `keepalive_timeout 0`: nginx uses
/// `keepalive_timeout` as HTTP/2's idle timeout, and 0 would end an h2
/// connection (GOAWAY) before its first request arrives. gRPC clients keep
/// theirs ([`GRPC_KEEPALIVE`] unless keep-alive is set): one call per
/// connection would cost each call a TLS handshake, and a stream would end
/// every other call on the connection with GOAWAY.
fn server_settings(out: &mut String, settings: &Settings, clients: Clients) {
    let keepalive = match (settings.keepalive_timeout.is_zero(), clients) {
        (false, _) => nginx_time(settings.keepalive_timeout),
        (true, Clients::Plain) => "0".to_string(),
        (true, Clients::Tls) => {
            format!("{};\n    keepalive_requests 1", nginx_time(HEADER_TIMEOUT))
        }
        (true, Clients::Grpc) => nginx_time(GRPC_KEEPALIVE),
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
        Some(backend) if service.h2c => {
            writeln!(
                out,
                "        grpc_pass grpc://{};",
                upstream_name(&service.name, backend)
            )
            .ok();
            out.push_str(GRPC_SETTINGS);
        }
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

/// The same for a `protocol = "h2c"` service: HTTP/2 with prior knowledge to
/// the instances (`grpc_pass`, trailers both ways), the same forwarded headers,
/// timeouts and retry rule (nginx never passes a request whose body was sent
/// to a second instance). No upgrades: HTTP/2 to the app cannot carry them.
const GRPC_SETTINGS: &str = "        grpc_set_header Host $http_host;
        grpc_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        grpc_set_header X-Forwarded-Proto $scheme;
        grpc_set_header X-Forwarded-Host $http_host;
        grpc_connect_timeout 2s;
        grpc_send_timeout 300s;
        grpc_read_timeout 300s;
        grpc_next_upstream error timeout;
        grpc_next_upstream_tries 2;
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
