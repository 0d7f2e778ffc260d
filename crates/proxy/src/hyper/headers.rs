//! Header rewriting between client and upstream: hop-by-hop stripping in both
//! directions, X-Forwarded-*, the Host header, and turning any downstream
//! request (HTTP/1.1 or h2) into an origin-form HTTP/1.1 upstream request.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri, Version, request};

use crate::client::ClientAddr;
use crate::error::ProxyError;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// True for an HTTP/1.1 request asking to switch protocols (e.g. websocket).
pub(crate) fn is_upgrade_request<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && connection_has(req.headers(), "upgrade")
}

/// True when a `101`'s Upgrade names `websocket`: the tunnel can then close
/// it with a close frame.
pub(crate) fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The standard hop-by-hop headers (RFC 9110 7.6.1) plus Proxy-Connection.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
}

/// Removes hop-by-hop headers: those named by Connection, and the standard
/// ones. With `keep_upgrade`, Upgrade stays and Connection becomes `upgrade`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Hot path: most messages carry none, and one pass over the names is far
    // cheaper than a hashed removal per hop-by-hop name. Headers named by
    // Connection need a Connection header, which this pass finds too.
    if !keep_upgrade && !headers.keys().any(is_hop_by_hop) {
        return;
    }
    strip_found(headers, keep_upgrade);
}

/// `strip_hop_by_hop` once a hop-by-hop header is known to be there.
fn strip_found(headers: &mut HeaderMap, keep_upgrade: bool) {
    let mut named: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            let common = token.is_empty()
                || token.eq_ignore_ascii_case("close")
                || token.eq_ignore_ascii_case("keep-alive")
                || token.eq_ignore_ascii_case("upgrade");
            if common {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                named.push(name);
            }
        }
    }
    for name in named {
        headers.remove(name);
    }
    headers.remove(header::CONNECTION);
    headers.remove(&KEEP_ALIVE);
    headers.remove(&PROXY_CONNECTION);
    headers.remove(header::TE);
    headers.remove(header::TRAILER);
    headers.remove(header::TRANSFER_ENCODING);
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::DELETE | Method::PUT | Method::TRACE
    )
}

/// True when a request may be sent again after a connection failed under it.
pub(crate) fn is_replayable(method: &Method, body_empty: bool) -> bool {
    body_empty && is_idempotent(method)
}

/// Rewrites a downstream request head into the HTTP/1.1 request sent upstream.
pub(crate) fn to_upstream(
    parts: &mut request::Parts,
    client: &ClientAddr,
    upgrade: bool,
) -> Result<(), ProxyError> {
    if parts.method == Method::CONNECT {
        return Err(ProxyError::Method);
    }
    // The authority of an absolute-form or h2 request wins over Host (RFC 9112 3.2.2).
    let host = match parts.uri.authority() {
        Some(authority) => {
            Some(HeaderValue::from_str(authority.as_str()).map_err(|_| ProxyError::BadRequest)?)
        }
        None => parts.headers.get(header::HOST).cloned(),
    };
    let h2 = parts.version == Version::HTTP_2;
    // One pass over the names instead of a hashed lookup per rule below: most
    // requests carry none of these.
    let (mut hop_by_hop, mut expect, mut forwarded, mut hosts) = (upgrade, false, false, 0);
    for name in parts.headers.keys() {
        if is_hop_by_hop(name) {
            hop_by_hop = true;
        } else if name == header::EXPECT {
            expect = true;
        } else if name == X_FORWARDED_FOR {
            forwarded = true;
        } else if name == header::HOST {
            hosts = parts.headers.get_all(header::HOST).iter().count();
        }
    }
    if hop_by_hop {
        strip_found(&mut parts.headers, upgrade);
    }
    if expect {
        // The proxy already answered any `100-continue` itself.
        parts.headers.remove(header::EXPECT);
    }
    append_forwarded_for(&mut parts.headers, client, forwarded);
    parts
        .headers
        .insert(&X_FORWARDED_PROTO, HeaderValue::from_static(client.proto()));
    if let Some(host) = host {
        parts.headers.insert(&X_FORWARDED_HOST, host.clone());
        // A single Host header that already says it (and that no Connection
        // token named for removal) stays as it is.
        if parts.uri.authority().is_some() || hosts != 1 || hop_by_hop {
            parts.headers.insert(header::HOST, host);
        }
    }
    if h2 {
        join_cookies(&mut parts.headers);
    }
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .ok_or(ProxyError::BadRequest)?;
        parts.uri = Uri::from(path);
    }
    parts.version = Version::HTTP_11;
    parts.extensions.clear();
    Ok(())
}

/// Appends the client address to X-Forwarded-For (one header, comma-separated).
fn append_forwarded_for(headers: &mut HeaderMap, client: &ClientAddr, present: bool) {
    if !present {
        if let Ok(value) = HeaderValue::from_bytes(client.text()) {
            headers.insert(&X_FORWARDED_FOR, value);
        }
        return;
    }
    let mut value = String::with_capacity(48);
    for previous in headers.get_all(&X_FORWARDED_FOR) {
        if let Ok(previous) = previous.to_str() {
            value.push_str(previous);
            value.push_str(", ");
        }
    }
    // The text is ASCII digits, dots, colons and hex letters.
    value.push_str(std::str::from_utf8(client.text()).unwrap_or_default());
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(&X_FORWARDED_FOR, value);
    }
}

/// h2 may split cookies over several fields; HTTP/1.1 wants one (RFC 9113 8.2.3).
fn join_cookies(headers: &mut HeaderMap) {
    let mut values = headers.get_all(header::COOKIE).iter();
    let (Some(_), Some(_)) = (values.next(), values.next()) else {
        return;
    };
    let joined = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join("; ");
    if let Ok(value) = HeaderValue::try_from(joined) {
        headers.insert(header::COOKIE, value);
    }
}
