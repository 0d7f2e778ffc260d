//! The header names the lean path acts on, recognised by length first and then
//! compared without regard to case; comma-separated tokens; Content-Length.

/// A header name the lean path treats specially, or `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Name {
    Host,
    Date,
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    ProxyConnection,
    Te,
    Trailer,
    Upgrade,
    Expect,
    ForwardedFor,
    ForwardedProto,
    ForwardedHost,
    RequestId,
    Other,
}

/// What `name` is. Most names in a request are none of these, and most are
/// rejected by their length alone.
pub(crate) fn classify(name: &str) -> Name {
    let is = |known: &str| name.eq_ignore_ascii_case(known);
    match name.len() {
        2 if is("te") => Name::Te,
        4 if is("host") => Name::Host,
        4 if is("date") => Name::Date,
        6 if is("expect") => Name::Expect,
        7 if is("upgrade") => Name::Upgrade,
        7 if is("trailer") => Name::Trailer,
        10 if is("connection") => Name::Connection,
        10 if is("keep-alive") => Name::KeepAlive,
        12 if is("x-request-id") => Name::RequestId,
        14 if is("content-length") => Name::ContentLength,
        15 if is("x-forwarded-for") => Name::ForwardedFor,
        16 if is("x-forwarded-host") => Name::ForwardedHost,
        16 if is("proxy-connection") => Name::ProxyConnection,
        17 if is("transfer-encoding") => Name::TransferEncoding,
        17 if is("x-forwarded-proto") => Name::ForwardedProto,
        _ => Name::Other,
    }
}

/// The comma-separated tokens of a header value, trimmed, empty ones skipped.
pub(crate) fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|token| !token.is_empty())
}

/// A Content-Length value: decimal digits only, no sign, no overflow.
pub(crate) fn parse_length(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_matched_without_case() {
        assert_eq!(classify("Host"), Name::Host);
        assert_eq!(classify("CONTENT-LENGTH"), Name::ContentLength);
        assert_eq!(classify("X-Forwarded-For"), Name::ForwardedFor);
        assert_eq!(classify("x-forwarded-host"), Name::ForwardedHost);
        assert_eq!(classify("Proxy-Connection"), Name::ProxyConnection);
        assert_eq!(classify("Transfer-Encoding"), Name::TransferEncoding);
        assert_eq!(classify("hosts"), Name::Other);
        assert_eq!(classify("accept"), Name::Other);
    }

    #[test]
    fn tokens_are_trimmed() {
        let found: Vec<&[u8]> = tokens(b" keep-alive, ,Close ").collect();
        assert_eq!(found, [&b"keep-alive"[..], &b"Close"[..]]);
    }

    #[test]
    fn lengths_are_plain_decimal() {
        assert_eq!(parse_length(b"0"), Some(0));
        assert_eq!(parse_length(b" 1234 "), Some(1234));
        assert_eq!(parse_length(b""), None);
        assert_eq!(parse_length(b"-1"), None);
        assert_eq!(parse_length(b"1,1"), None);
        assert_eq!(parse_length(b"99999999999999999999999"), None);
    }
}
