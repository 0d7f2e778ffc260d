//! Plain-HTTP requests for a TLS service: where the 308 sends them, and the
//! one path that is never redirected (ACME HTTP-01 challenges, answered over
//! plain HTTP by definition). Used by both HTTP paths.

use super::host::strip_port;

/// The path prefix of ACME HTTP-01 challenges (RFC 8555 8.3).
pub(super) const ACME_CHALLENGE: &[u8] = b"/.well-known/acme-challenge/";

/// Whether `target` (a request's origin-form target) is an ACME challenge.
pub(crate) fn is_acme_challenge(target: &[u8]) -> bool {
    target.starts_with(ACME_CHALLENGE)
}

/// `https://host[:port]target`: the request's host without its port, the TLS
/// listener's port unless 443, and the same path and query. `host` is one a
/// service names (only those are redirected), so it is a valid name.
pub(crate) fn location(host: &[u8], port: u16, target: &[u8]) -> Vec<u8> {
    let host = std::str::from_utf8(host).map_or("", strip_port);
    let mut out = Vec::with_capacity(16 + host.len() + target.len());
    out.extend_from_slice(b"https://");
    out.extend_from_slice(host.as_bytes());
    if port != 443 {
        out.push(b':');
        out.extend_from_slice(itoa::Buffer::new().format(port).as_bytes());
    }
    if target.starts_with(b"/") {
        out.extend_from_slice(target);
    } else {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_keeps_path_and_query_and_names_the_port_unless_443() {
        let at = |host: &str, port, target: &str| {
            String::from_utf8(location(host.as_bytes(), port, target.as_bytes())).unwrap()
        };
        assert_eq!(
            at("example.com", 443, "/a?b=c"),
            "https://example.com/a?b=c"
        );
        assert_eq!(at("example.com:80", 8443, "/"), "https://example.com:8443/");
        assert_eq!(at("example.com", 443, "*"), "https://example.com/");
    }

    #[test]
    fn only_challenge_paths_are_challenges() {
        assert!(is_acme_challenge(b"/.well-known/acme-challenge/token"));
        assert!(!is_acme_challenge(b"/.well-known/acme-challenge"));
        assert!(!is_acme_challenge(b"/x/.well-known/acme-challenge/token"));
    }
}
