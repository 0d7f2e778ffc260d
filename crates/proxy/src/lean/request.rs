//! The client's request head on the lean path: parsed in place with httparse,
//! checked against what the lean path handles, and written out as the upstream
//! head by copying the client's header lines, dropping the hop-by-hop ones and
//! adding the X-Forwarded-* lines. No header map is built.
//!
//! Header names with an underscore are dropped here by default (nginx's
//! `underscores_in_headers off`), or passed (`UnderscoreHeaders::Pass`).
//!
//! Anything else (HTTP/1.0, absolute-form or `*` targets, CONNECT, upgrades,
//! `Expect`, `Transfer-Encoding`, bodies over 64 KiB, Connection tokens other than close and
//! keep-alive, several Host or Content-Length lines, a head that does not
//! parse) is [`Parsed::Fallback`]: hyper serves it, and answers the malformed
//! ones with its own 400/431. So do requests hyper's path refuses before
//! routing (`hyper::screen`): no Host or an invalid one, and with
//! `UnderscoreHeaders::Refuse` a header name with an underscore. The lean
//! path only recognises them (a byte scan of the Host value and of each
//! other header's name); the refusal is written once, on hyper's path.

use std::mem::MaybeUninit;
use std::ops::Range;

use super::names::{self, Name};
use crate::UnderscoreHeaders;
use crate::access::request_id;
use crate::client::ClientAddr;
use crate::routes::valid_host;

/// Header lines parsed without allocating; a head with more is parsed again
/// with a larger array (the limit is the head's bytes).
const MAX_HEADERS: usize = 64;

/// Largest request body the lean path forwards. It writes the whole body
/// before it reads the response; a larger one goes to hyper, which streams
/// both ways at once (an app that answers while it reads cannot stall it).
const MAX_BODY: u64 = 64 * 1024;

/// What the client's buffer holds so far.
pub(crate) enum Parsed {
    /// A request head, not complete yet.
    Partial,
    /// A request the lean path does not handle: hyper gets the connection.
    Fallback,
    /// A complete request head, rewritten into the upstream head.
    Ready(RequestHead),
}

/// A parsed request head. Positions refer to the client's buffer.
pub(crate) struct RequestHead {
    /// Bytes of the head, up to and including the blank line.
    pub(crate) len: usize,
    /// Where the Host value is in the buffer.
    pub(crate) host: Range<usize>,
    /// Bytes of body after the head.
    pub(crate) content_length: u64,
    /// A HEAD request: the response has no body, whatever it says.
    pub(crate) head_method: bool,
    /// May be sent again after its connection failed (idempotent, no body).
    pub(crate) replayable: bool,
    /// The client asked to close the connection after this response.
    pub(crate) close: bool,
    /// Where the client's `x-request-id` value is in the upstream head (a
    /// sane one: others are dropped, see `access::request_id`).
    pub(crate) request_id: Option<Range<usize>>,
}

/// Where the Host value is in an upstream head `parse` wrote for `req`:
/// its last line, `x-forwarded-host` (before anything is added after it).
pub(crate) fn host_in_upstream(upstream: &[u8], req: &RequestHead) -> Range<usize> {
    let end = upstream.len().saturating_sub(4);
    end.saturating_sub(req.host.len())..end
}

/// Adds `x-request-id: id` as the upstream head's last line; returns where
/// the id is.
pub(crate) fn add_request_id(upstream: &mut Vec<u8>, id: &[u8]) -> Range<usize> {
    // Before the blank line that ends the head.
    upstream.truncate(upstream.len() - 2);
    upstream.extend_from_slice(b"x-request-id: ");
    let start = upstream.len();
    upstream.extend_from_slice(id);
    upstream.extend_from_slice(b"\r\n\r\n");
    start..start + id.len()
}

/// The request target of an upstream head `parse` wrote (`METHOD SP
/// target SP HTTP/1.1`).
pub(crate) fn target(upstream: &[u8]) -> &[u8] {
    let start = upstream
        .iter()
        .position(|&b| b == b' ')
        .map_or(upstream.len(), |at| at + 1);
    let rest = &upstream[start..];
    let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    &rest[..end]
}

/// Parses the head at the start of `buf`; when complete, writes the upstream
/// head into `upstream` (cleared first). `underscores` says what to do with
/// header names that have one.
pub(crate) fn parse(
    buf: &[u8],
    client: &ClientAddr,
    upstream: &mut Vec<u8>,
    underscores: UnderscoreHeaders,
) -> Parsed {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    match parse_in(buf, client, upstream, underscores, &mut slots) {
        Some(parsed) => parsed,
        None => parse_grown(buf, client, upstream, underscores),
    }
}

/// `parse` for a head with more header lines than its array holds: the
/// limit is in bytes (the caller's head limit), so again with room for as
/// many as the bytes in hand can carry (a line is at least `a:` and a line
/// end), on the heap: only such heads pay.
#[cold]
#[inline(never)]
fn parse_grown(
    buf: &[u8],
    client: &ClientAddr,
    upstream: &mut Vec<u8>,
    underscores: UnderscoreHeaders,
) -> Parsed {
    let lines = buf.len() / 3 + 1;
    let mut slots: Vec<_> = (0..lines).map(|_| MaybeUninit::uninit()).collect();
    parse_in(buf, client, upstream, underscores, &mut slots).unwrap_or(Parsed::Fallback)
}

/// `parse` with room for `slots.len()` header lines; None when the head has
/// more.
#[inline(always)]
fn parse_in<'b>(
    buf: &'b [u8],
    client: &ClientAddr,
    upstream: &mut Vec<u8>,
    underscores: UnderscoreHeaders,
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Option<Parsed> {
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Some(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return None,
        Err(_) => return Some(Parsed::Fallback),
    };
    let (Some(method), Some(path), Some(1)) = (req.method, req.path, req.version) else {
        return Some(Parsed::Fallback);
    };
    if !path.starts_with('/') || method == "CONNECT" {
        return Some(Parsed::Fallback);
    }
    let mut host = None;
    let mut content_length = None;
    let mut close = false;
    let mut forwarded_for = 0;
    let mut request_id = None;
    upstream.clear();
    upstream.extend_from_slice(method.as_bytes());
    upstream.push(b' ');
    upstream.extend_from_slice(path.as_bytes());
    upstream.extend_from_slice(b" HTTP/1.1\r\n");
    for header in req.headers.iter() {
        match names::classify(header.name) {
            Name::Other => {
                if underscores != UnderscoreHeaders::Pass && header.name.as_bytes().contains(&b'_')
                {
                    if underscores == UnderscoreHeaders::Refuse {
                        return Some(Parsed::Fallback);
                    }
                    // Dropped, as nginx does.
                    continue;
                }
            }
            Name::Date => {}
            Name::Host => {
                if host.is_some() {
                    return Some(Parsed::Fallback);
                }
                host = Some(header.value);
            }
            Name::ContentLength => {
                if content_length.is_some() {
                    return Some(Parsed::Fallback);
                }
                let Some(n) = names::parse_length(header.value) else {
                    return Some(Parsed::Fallback);
                };
                content_length = Some(n);
            }
            Name::Connection => {
                for token in names::tokens(header.value) {
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if !token.eq_ignore_ascii_case(b"keep-alive") {
                        // Upgrade, or headers named for removal: hyper's path.
                        return Some(Parsed::Fallback);
                    }
                }
                continue;
            }
            Name::ForwardedFor => {
                forwarded_for += 1;
                continue;
            }
            Name::RequestId => {
                // One, and sane, or none (nothing odd reaches the app or the log).
                if request_id.is_some() || !request_id::is_sane(header.value) {
                    continue;
                }
                let start = upstream.len() + header.name.len() + 2;
                request_id = Some(start..start + header.value.len());
            }
            Name::ForwardedProto | Name::ForwardedHost | Name::KeepAlive => continue,
            Name::ProxyConnection | Name::Te | Name::Trailer => continue,
            Name::TransferEncoding | Name::Upgrade | Name::Expect => return Some(Parsed::Fallback),
        }
        write_line(upstream, header.name.as_bytes(), header.value);
    }
    // None or invalid: hyper's path answers 400.
    let Some(host) = host.filter(|host| valid_host(host)) else {
        return Some(Parsed::Fallback);
    };
    upstream.extend_from_slice(b"x-forwarded-for: ");
    if forwarded_for > 0 {
        // Earlier proxies' addresses first, as one comma-separated line.
        let previous = req
            .headers
            .iter()
            .filter(|h| names::classify(h.name) == Name::ForwardedFor);
        for header in previous {
            upstream.extend_from_slice(header.value);
            upstream.extend_from_slice(b", ");
        }
    }
    upstream.extend_from_slice(client.text());
    upstream.extend_from_slice(b"\r\nx-forwarded-proto: http\r\n");
    write_line(upstream, b"x-forwarded-host", host);
    upstream.extend_from_slice(b"\r\n");
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_BODY {
        return Some(Parsed::Fallback);
    }
    let start = host.as_ptr() as usize - buf.as_ptr() as usize;
    Some(Parsed::Ready(RequestHead {
        len,
        host: start..start + host.len(),
        content_length,
        head_method: method == "HEAD",
        replayable: content_length == 0 && is_idempotent(method),
        close,
        request_id,
    }))
}

fn write_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn is_idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "DELETE" | "PUT" | "TRACE"
    )
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn client() -> ClientAddr {
        ClientAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)))
    }

    fn ready(raw: &[u8]) -> (RequestHead, String) {
        let mut out = Vec::new();
        match parse(raw, &client(), &mut out, UnderscoreHeaders::Drop) {
            Parsed::Ready(head) => (head, String::from_utf8(out).unwrap()),
            Parsed::Partial => panic!("partial"),
            Parsed::Fallback => panic!("fallback"),
        }
    }

    fn falls_back(raw: &[u8]) -> bool {
        matches!(
            parse(raw, &client(), &mut Vec::new(), UnderscoreHeaders::Drop),
            Parsed::Fallback
        )
    }

    #[test]
    fn rewrites_the_forwarding_lines_and_keeps_the_rest() {
        let raw = b"GET /a?b=1 HTTP/1.1\r\nHost: app.test:8080\r\nConnection: keep-alive\r\n\
            X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nAccept: */*\r\n\
            Keep-Alive: timeout=5\r\nX-Forwarded-For: 5.6.7.8\r\n\r\nrest";
        let (head, out) = ready(raw);
        assert_eq!(head.len, raw.len() - 4);
        assert_eq!(&raw[head.host.clone()], b"app.test:8080");
        assert!(head.replayable && !head.close && !head.head_method);
        assert_eq!(
            out,
            "GET /a?b=1 HTTP/1.1\r\nHost: app.test:8080\r\nAccept: */*\r\n\
             x-forwarded-for: 1.2.3.4, 5.6.7.8, 10.0.0.7\r\nx-forwarded-proto: http\r\n\
             x-forwarded-host: app.test:8080\r\n\r\n"
        );
    }

    #[test]
    fn reads_body_length_close_and_method() {
        let (head, _) =
            ready(b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 12\r\nconnection: Close\r\n\r\n");
        assert_eq!(head.content_length, 12);
        assert!(head.close && !head.replayable);
        let (head, _) = ready(b"HEAD / HTTP/1.1\r\nhost: a\r\n\r\n");
        assert!(head.head_method && head.replayable);
    }

    #[test]
    fn a_partial_head_waits_for_more() {
        let mut out = Vec::new();
        assert!(matches!(
            parse(
                b"GET / HTTP/1.1\r\nHo",
                &client(),
                &mut out,
                UnderscoreHeaders::Drop
            ),
            Parsed::Partial
        ));
    }

    #[test]
    fn what_the_lean_path_does_not_handle_goes_to_hyper() {
        assert!(falls_back(b"GET / HTTP/1.0\r\nhost: a\r\n\r\n"));
        assert!(falls_back(b"GET http://a/ HTTP/1.1\r\nhost: a\r\n\r\n"));
        assert!(falls_back(b"CONNECT a:443 HTTP/1.1\r\nhost: a\r\n\r\n"));
        assert!(falls_back(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(falls_back(b"GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n"));
        assert!(falls_back(
            b"GET / HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
        ));
        assert!(falls_back(
            b"POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n"
        ));
        assert!(falls_back(
            b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\n"
        ));
        assert!(falls_back(
            b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: +1\r\n\r\n"
        ));
        assert!(falls_back(
            b"POST / HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\n\r\n"
        ));
        assert!(falls_back(
            b"GET / HTTP/1.1\r\nhost: a\r\nconnection: x-secret\r\n\r\n"
        ));
        assert!(falls_back(b"GET / HTTP/1.1\r\nbad header\r\n\r\n"));
        // Refused by hyper's path: no Host or an invalid one.
        assert!(falls_back(b"GET / HTTP/1.1\r\nhost: \r\n\r\n"));
        assert!(falls_back(
            b"GET / HTTP/1.1\r\nhost: api.example:80@web.example\r\n\r\n"
        ));
        assert!(falls_back(b"GET / HTTP/1.1\r\nhost: a:b\r\n\r\n"));
    }

    #[test]
    fn underscore_names_are_dropped_passed_or_handed_over() {
        let raw = b"GET / HTTP/1.1\r\nhost: a\r\nx_forwarded_for: 6.6.6.6\r\nx-ok: 1\r\n\r\n";
        let (_, out) = ready(raw);
        assert!(!out.contains("6.6.6.6") && out.contains("x-ok: 1"), "{out}");
        let mut out = Vec::new();
        let passed = parse(raw, &client(), &mut out, UnderscoreHeaders::Pass);
        assert!(matches!(passed, Parsed::Ready(_)));
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("x_forwarded_for: 6.6.6.6\r\n"), "{out}");
        let refused = parse(raw, &client(), &mut Vec::new(), UnderscoreHeaders::Refuse);
        assert!(matches!(refused, Parsed::Fallback));
    }

    #[test]
    fn request_ids_are_kept_when_sane_and_added_where_the_log_reads_them() {
        let raw = b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Request-Id: abc-1\r\n\r\n";
        let mut out = Vec::new();
        let Parsed::Ready(head) = parse(raw, &client(), &mut out, UnderscoreHeaders::Drop) else {
            panic!("ready");
        };
        assert_eq!(&out[head.request_id.clone().unwrap()], b"abc-1");
        assert_eq!(&out[host_in_upstream(&out, &head)], b"a.test");
        // Not sane: dropped, and one is added (with the access log on).
        let raw = b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Request-Id: a b\r\n\r\n";
        let Parsed::Ready(head) = parse(raw, &client(), &mut out, UnderscoreHeaders::Drop) else {
            panic!("ready");
        };
        assert!(head.request_id.is_none());
        assert_eq!(&out[host_in_upstream(&out, &head)], b"a.test");
        let at = add_request_id(&mut out, b"made");
        assert_eq!(&out[at], b"made");
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("a b"), "{text}");
        assert!(
            text.ends_with("x-forwarded-host: a.test\r\nx-request-id: made\r\n\r\n"),
            "{text}"
        );
    }
}
