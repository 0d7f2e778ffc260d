//! The HTTPS side of the generated config: one TLS `server` per service
//! with certificate files, a default TLS server that refuses the handshake
//! for every other name, the plain listener's 308 to https, and its ACME
//! HTTP-01 challenge location. Pure, like the rest of `render`.
//!
//! nginx picks the TLS server by SNI for the handshake. With no
//! `default_server` of its own it would answer an unknown name with the first
//! server's certificate, showing that service's names to anyone who asks:
//! `ssl_reject_handshake on` (nginx 1.19.4+) in the default server makes the
//! handshake fail instead, as the builtin proxy's resolver does. After the
//! handshake nginx routes by Host among the TLS servers (HTTP/2 clients reuse
//! a connection for every name its certificate covers); a Host no TLS service
//! names gets 421 Misdirected Request from the default server.

use std::fmt::Write as _;

use super::super::quote;
use super::super::routes::ServiceRoute;
use super::{Clients, Settings, production_location, server_settings};

/// The path prefix of ACME HTTP-01 challenges (RFC 8555 8.3).
const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// The protocols offered, as the builtin proxy's (rustls) are.
const PROTOCOLS: &str = "ssl_protocols TLSv1.2 TLSv1.3;";

/// Sessions resumed across connections and workers (a TLS client that opens a
/// connection per request, as every client does while keep-alive is off,
/// skips the full handshake). The name is teal's, so a system nginx's own
/// cache is not shared.
const SESSION_CACHE: &str = "ssl_session_cache shared:teal_tls:10m;";

/// The port the plain listener's requests for `service` are redirected to
/// (the TLS listener's), when they are: a service with a certificate, a TLS
/// listener, and `redirect` on.
pub(super) fn redirect_port(service: &ServiceRoute, settings: &Settings) -> Option<u16> {
    let tls = settings.tls.as_ref()?;
    (tls.redirect && service.tls.is_some()).then_some(tls.listen.port())
}

/// `location / { return 308 https://... }`: the same host (nginx's `$host`:
/// lowercased, without its port), path and query, the TLS port unless 443.
pub(super) fn redirect_location(out: &mut String, port: u16) {
    let port = if port == 443 {
        String::new()
    } else {
        format!(":{port}")
    };
    writeln!(
        out,
        "    location / {{\n        return 308 https://$host{port}$request_uri;\n    }}"
    )
    .ok();
}

/// The ACME HTTP-01 challenge location of a plain-listener server: the file
/// teal wrote for the token (`Router::set_challenge`), else `fallback` (a
/// named location proxying to the app, which may answer its own challenges,
/// or `=CODE`). Never redirected.
pub(super) fn challenge_location(out: &mut String, settings: &Settings, fallback: &str) {
    writeln!(
        out,
        "    location ^~ {CHALLENGE_PREFIX} {{\n        root {};\n        default_type text/plain;\n        try_files $uri {fallback};\n    }}",
        quote(&settings.webroot)
    )
    .ok();
}

/// `listen ADDR ssl ...;` for the TLS listener, with HTTP/2 offered by ALPN
/// (`http2` on the listen line, or `http2 on;` where nginx has it).
fn listen_line(out: &mut String, settings: &Settings, default: bool) {
    let Some(tls) = &settings.tls else { return };
    let default = if default { " default_server" } else { "" };
    if settings.http2_directive {
        writeln!(
            out,
            "    listen {} ssl{default};\n    http2 on;",
            tls.listen
        )
        .ok();
    } else {
        writeln!(out, "    listen {} ssl http2{default};", tls.listen).ok();
    }
}

/// The service's TLS server, when it has certificate files and there is a
/// TLS listener: its hosts by SNI and Host, its own certificate, production
/// proxied as on the plain listener (the app sees `X-Forwarded-Proto: https`).
pub(super) fn https_server(out: &mut String, service: &ServiceRoute, settings: &Settings) {
    let Some(files) = &service.tls else { return };
    if settings.tls.is_none() {
        return;
    }
    writeln!(out, "\n# {}: HTTPS", service.name).ok();
    out.push_str("server {\n");
    listen_line(out, settings, false);
    writeln!(
        out,
        "    server_name {};\n    ssl_certificate {};\n    ssl_certificate_key {};\n    {PROTOCOLS}\n    {SESSION_CACHE}",
        service.hosts.join(" "),
        quote(&files.cert),
        quote(&files.key),
    )
    .ok();
    let clients = if service.h2c {
        Clients::Grpc
    } else {
        Clients::Tls
    };
    server_settings(out, settings, clients);
    production_location(out, "/", service);
    out.push_str("}\n");
}

/// The TLS listener's default server: no certificate, every handshake it
/// gets refused (an SNI no service claims, or none); a request whose Host
/// names no TLS service, on a connection another name opened, gets 421.
pub(super) fn unknown_names_server(out: &mut String, settings: &Settings) {
    if settings.tls.is_none() {
        return;
    }
    out.push_str(
        "\n# TLS: a name no service claims (SNI) fails the handshake: no certificate is shown\nserver {\n",
    );
    listen_line(out, settings, true);
    writeln!(
        out,
        "    server_name _;\n    ssl_reject_handshake on;\n    {PROTOCOLS}\n    {SESSION_CACHE}\n    keepalive_timeout 0;\n    location / {{\n        return 421;\n    }}\n}}"
    )
    .ok();
}
