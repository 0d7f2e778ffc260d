//! Maintenance in nginx terms: a service's production `location /` answers
//! `return 503 "TEXT"` with `Retry-After` (for every Host of its server, or,
//! per host, inside `if ($host = "HOST")`) instead of proxying. The text and
//! hosts were checked in `routes.rs` (nothing in them can end a string).

use std::fmt::Write as _;

use super::super::routes::ServiceRoute;
use super::{location_body, proxy_location};

/// `location AT` of `service`'s production server: gated by its maintenance.
pub(super) fn production_location(out: &mut String, at: &str, service: &ServiceRoute) {
    if service.maintenance.is_empty() {
        return proxy_location(out, at, service, service.live.as_ref());
    }
    writeln!(
        out,
        "    location {at} {{\n        default_type text/plain;"
    )
    .ok();
    for m in &service.maintenance {
        let Some(host) = &m.host else { continue };
        writeln!(
            out,
            "        if ($host = \"{host}\") {{\n            add_header Retry-After {} always;\n            return 503 \"{}\";\n        }}",
            m.retry_after, m.text
        )
        .ok();
    }
    match service.maintenance.iter().find(|m| m.host.is_none()) {
        Some(all) => {
            writeln!(
                out,
                "        add_header Retry-After {} always;\n        return 503 \"{}\";",
                all.retry_after, all.text
            )
            .ok();
        }
        None => location_body(out, service, service.live.as_ref()),
    }
    out.push_str("    }\n");
}

#[cfg(test)]
mod tests;
