//! Host names: how configured hosts are normalised, and which host a request
//! is for. Runs on every request when some service names hosts: byte scans,
//! no allocation for lower-case names.

use http::Request;

/// Lower-cases a configured host and strips any port and trailing dot.
pub(crate) fn normalize_hosts(hosts: &[String]) -> Vec<String> {
    let mut out: Vec<String> = hosts
        .iter()
        .map(|h| strip_port(h.trim()).to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The request's host as sent: the authority of an absolute-form or h2
/// request, else the Host header.
pub(crate) fn request_host<B>(req: &Request<B>) -> Option<&str> {
    if let Some(authority) = req.uri().authority() {
        return Some(authority.as_str());
    }
    req.headers().get(http::header::HOST)?.to_str().ok()
}

pub(crate) fn strip_port(host: &str) -> &str {
    // Byte scans: this runs on every request, and the names are short.
    let host = match host.bytes().rposition(|b| b == b'@') {
        Some(at) => &host[at + 1..],
        None => host,
    };
    let host = if host.starts_with('[') {
        match host.bytes().position(|b| b == b']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        match host.bytes().rposition(|b| b == b':') {
            Some(colon) if host.as_bytes()[colon + 1..].iter().all(u8::is_ascii_digit) => {
                &host[..colon]
            }
            _ => host,
        }
    };
    host.strip_suffix('.').unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::strip_port;

    #[test]
    fn strips_ports_and_dots() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("Example.com."), "Example.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("localhost"), "localhost");
    }
}
