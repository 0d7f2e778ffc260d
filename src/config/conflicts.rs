//! Clashes between services and listeners: one default service, each host routed
//! to one service, and each listener on its own address.
//!
//! Sites come in file order, so the error points at the later of two clashing values.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;

use super::invalid::Invalid;

/// Where a resolved service's routing values came from, for conflict messages.
#[derive(Debug)]
pub(super) struct ServiceSite {
    pub name: String,
    pub name_span: Range<usize>,
    /// Lowercased hosts with the spans of their values.
    pub hosts: Vec<(String, Range<usize>)>,
    pub preview: Option<(SocketAddr, Range<usize>)>,
    /// Where its `tls` is, when it has one.
    pub tls: Option<Range<usize>>,
}

/// A listener the daemon will bind, named as in the file (e.g. "proxy.listen").
#[derive(Debug)]
pub(super) struct Listener {
    /// How a message names it as the subject: "preview", "proxy.admin".
    pub name: &'static str,
    /// How a message names it as the other party: "the preview of service \"web\"".
    pub what: String,
    pub addr: SocketAddr,
    /// None when the address is a default.
    pub span: Option<Range<usize>>,
}

/// `others` are the optional listeners besides production (admin, TLS).
pub(super) fn check<const N: usize>(
    listen: &Listener,
    others: [&Option<Listener>; N],
    sites: &[ServiceSite],
) -> Result<(), Invalid> {
    default_service(sites)?;
    hosts(sites)?;
    let mut bound: Vec<&Listener> = vec![listen];
    let previews: Vec<Listener> = sites
        .iter()
        .filter_map(|site| {
            let (addr, span) = site.preview.clone()?;
            Some(Listener {
                name: "preview",
                what: format!("the preview of service {:?}", site.name),
                addr,
                span: Some(span),
            })
        })
        .collect();
    let others = others.into_iter().filter_map(Option::as_ref);
    for listener in others.chain(&previews) {
        for other in &bound {
            if let Some(message) = clash(listener, other) {
                return Err(Invalid {
                    span: listener.span.clone(),
                    message,
                });
            }
        }
        bound.push(listener);
    }
    Ok(())
}

fn default_service(sites: &[ServiceSite]) -> Result<(), Invalid> {
    let mut defaults = sites.iter().filter(|site| site.hosts.is_empty());
    let (Some(first), Some(second)) = (defaults.next(), defaults.next()) else {
        return Ok(());
    };
    Err(Invalid {
        span: Some(second.name_span.clone()),
        message: format!(
            "services {:?} and {:?} both have no hosts, but only one service can be the default; give one of them hosts = [\"...\"]",
            first.name, second.name
        ),
    })
}

fn hosts(sites: &[ServiceSite]) -> Result<(), Invalid> {
    let mut owners: HashMap<&str, &str> = HashMap::new();
    for site in sites {
        for (host, span) in &site.hosts {
            if let Some(owner) = owners.insert(host, &site.name) {
                let message = if owner == site.name {
                    format!("host {host:?} is listed twice in service {owner:?}")
                } else {
                    format!("host {host:?} is already routed to service {owner:?}")
                };
                return Err(Invalid {
                    span: Some(span.clone()),
                    message,
                });
            }
        }
    }
    Ok(())
}

/// Why `a` cannot be bound next to `b`, if it cannot. Port 0 (any free port) never
/// clashes; an unspecified IP (0.0.0.0, ::) clashes with every IP on the same port.
fn clash(a: &Listener, b: &Listener) -> Option<String> {
    if a.addr.port() == 0 || a.addr.port() != b.addr.port() {
        return None;
    }
    let name = a.name;
    if a.addr == b.addr {
        return Some(format!(
            "{name} {} is already used by {}; each listener needs its own address",
            a.addr, b.what
        ));
    }
    if a.addr.ip().is_unspecified() || b.addr.ip().is_unspecified() {
        return Some(format!(
            "{name} {} overlaps {} {} (same port, and one of them listens on all addresses)",
            a.addr, b.what, b.addr
        ));
    }
    None
}

#[cfg(test)]
mod tests;
