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

/// Whether `host` is a valid Host value (RFC 9110 7.2): a name, an IPv4
/// address or a bracketed IPv6 one, then an optional port of 1 to 5 digits.
/// Not valid: empty, user-info (`a@b`: RFC 9110 4.2.1 forbids it, and it
/// made the host after the `@` the one routed to), spaces, controls,
/// `/ \ ? #`, non-ASCII, two dots in a row (nginx refuses these too).
/// RFC 9112 3.2: a server answers 400 to an invalid one. A byte scan of a
/// short value: it runs on every request.
pub(crate) fn valid_host(host: &[u8]) -> bool {
    let (name_ok, port) = if let Some(literal) = host.strip_prefix(b"[") {
        // An IP literal: `[` hex digits, colons and dots `]`.
        let Some(end) = literal.iter().position(|&b| b == b']') else {
            return false;
        };
        let ip_chars = |b: &u8| b.is_ascii_hexdigit() || matches!(b, b':' | b'.');
        let ok = end > 0 && literal[..end].iter().all(ip_chars);
        match &literal[end + 1..] {
            [] => (ok, None),
            [b':', port @ ..] => (ok, Some(port)),
            _ => return false,
        }
    } else {
        // A name up to the first `:`, then the port: one pass, a table
        // look-up per byte.
        let mut end = host.len();
        let mut after_dot = false;
        for (at, &b) in host.iter().enumerate() {
            match HOST_BYTES[usize::from(b)] {
                Class::Name => after_dot = false,
                Class::Dot if !after_dot => after_dot = true,
                Class::Colon => {
                    end = at;
                    break;
                }
                _ => return false,
            }
        }
        (end > 0, host.get(end + 1..))
    };
    let port_ok = port
        .is_none_or(|port| (1..=5).contains(&port.len()) && port.iter().all(u8::is_ascii_digit));
    name_ok && port_ok
}

/// What a byte of a Host name is: a byte of an RFC 3986 reg-name
/// (unreserved, `%` of pct-encoded, sub-delims), a dot (no two in a row), the
/// colon before the port, or anything else (`@`, `/`, `?`, `#`, brackets,
/// spaces, controls, non-ASCII).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Name,
    Dot,
    Colon,
    Invalid,
}

const HOST_BYTES: [Class; 256] = {
    let mut table = [Class::Invalid; 256];
    let mut at = 0;
    while at < 256 {
        let b = at as u8;
        table[at] = match b {
            b'.' => Class::Dot,
            b':' => Class::Colon,
            b'-' | b'_' | b'~' | b'%' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+'
            | b',' | b';' | b'=' => Class::Name,
            _ if b.is_ascii_alphanumeric() => Class::Name,
            _ => Class::Invalid,
        };
        at += 1;
    }
    table
};

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
    use super::{strip_port, valid_host};

    #[test]
    fn host_values_are_checked() {
        for good in [
            "example.com",
            "Example.com:8080",
            "example.com.",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8080",
            "localhost",
            "my_host",
        ] {
            assert!(valid_host(good.as_bytes()), "{good}");
        }
        for bad in [
            "",
            ":80",
            "api.example:80@web.example",
            "user@web.example",
            "a b",
            "a/b",
            "a\\b",
            "a?b",
            "a#b",
            "a..b",
            "a:",
            "a:x",
            "a:123456",
            "a:80:80",
            "[::1",
            "[]",
            "[::1]x",
            "[::1]:",
            "caf\u{e9}.example",
            "a\tb",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn strips_ports_and_dots() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("Example.com."), "Example.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("localhost"), "localhost");
    }
}
