//! The upstream's response head on the lean path: parsed with httparse (at
//! most `MAX_RESPONSE_HEAD` bytes of it), its body framing worked out, and
//! written out for the client by copying its header lines without the
//! hop-by-hop ones. Also the proxy's own short
//! answers (404, 502, ...) in the same form.

use super::date;
use super::framing::{Chunked, Framing};
use super::names::{self, Name};
use crate::error::{BadResponse, ProxyError};
use crate::upstream::MAX_RESPONSE_HEAD;

/// Header lines parsed without allocating; a head with more is parsed again
/// with a larger array (the limit is `MAX_RESPONSE_HEAD` bytes).
const MAX_HEADERS: usize = 100;

/// What the upstream's buffer holds so far.
pub(crate) enum Parsed {
    Partial,
    /// An interim (1xx) response of this many bytes: dropped, the final one follows.
    Interim(usize),
    Final(ResponseHead),
}

/// A final response head, already written out for the client.
pub(crate) struct ResponseHead {
    /// Bytes of the head in the upstream buffer.
    pub(crate) len: usize,
    pub(crate) status: u16,
    pub(crate) framing: Framing,
    /// The upstream keeps the connection open after this response.
    pub(crate) reusable: bool,
    /// The client connection must close after this response (the body runs
    /// until the upstream closes, or `close` was asked for).
    pub(crate) close_client: bool,
}

/// Parses the head at the start of `buf`. For a final response, writes the
/// client's head into `client` (cleared first); with `close`, it tells the
/// client the connection closes after it.
pub(crate) fn parse(
    buf: &[u8],
    head_request: bool,
    close: bool,
    client: &mut Vec<u8>,
) -> Result<Parsed, BadResponse> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut kinds = [Name::Other; MAX_HEADERS];
    match parse_in(buf, head_request, close, client, &mut slots, &mut kinds)? {
        Some(parsed) => Ok(parsed),
        None => parse_grown(buf, head_request, close, client),
    }
}

/// `parse` for a head with more header lines than its array holds: the
/// limit is in bytes, so again with room for as many as the bytes in hand
/// can carry (a line is at least `a:` and a line end), on the heap: only
/// such heads pay.
#[cold]
#[inline(never)]
fn parse_grown(
    buf: &[u8],
    head_request: bool,
    close: bool,
    client: &mut Vec<u8>,
) -> Result<Parsed, BadResponse> {
    let lines = buf.len().min(MAX_RESPONSE_HEAD) / 3 + 1;
    let mut slots = vec![httparse::EMPTY_HEADER; lines];
    let mut kinds = vec![Name::Other; lines];
    parse_in(buf, head_request, close, client, &mut slots, &mut kinds)?.ok_or(BadResponse::TooBig)
}

/// `parse` with room for `slots.len()` header lines (`kinds` as long);
/// None when the head has more.
#[inline(always)]
fn parse_in<'b>(
    buf: &'b [u8],
    head_request: bool,
    close: bool,
    client: &mut Vec<u8>,
    slots: &mut [httparse::Header<'b>],
    kinds: &mut [Name],
) -> Result<Option<Parsed>, BadResponse> {
    let mut res = httparse::Response::new(slots);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_RESPONSE_HEAD => {
            return Err(BadResponse::TooBig);
        }
        Ok(httparse::Status::Partial) => return Ok(Some(Parsed::Partial)),
        Err(httparse::Error::TooManyHeaders) => return Ok(None),
        Err(_) => return Err(BadResponse::Head),
    };
    // By bytes, however the head arrived: a whole large head read at once
    // too (nginx: "upstream sent too big header").
    if len > MAX_RESPONSE_HEAD {
        return Err(BadResponse::TooBig);
    }
    let (Some(version), Some(status)) = (res.version, res.code) else {
        return Err(BadResponse::Head);
    };
    match status {
        101 => return Err(BadResponse::Upgrade),
        100..=199 => return Ok(Some(Parsed::Interim(len))),
        // Three digits but not a status (`020`): it would go out as `20`.
        // hyper's path refuses it too (found by fuzz/response_head).
        0..=99 => return Err(BadResponse::Head),
        _ => {}
    }
    // First pass: what each header is, framing, the Connection header's tokens.
    let mut length = None;
    let mut chunked = None;
    let mut upstream_close = version == 0;
    let mut named = false;
    let mut dated = false;
    for (header, kind) in res.headers.iter().zip(kinds.iter_mut()) {
        *kind = names::classify(header.name);
        match *kind {
            Name::Date => dated = true,
            Name::ContentLength => {
                let n = names::parse_length(header.value).ok_or(BadResponse::Head)?;
                if length.is_some_and(|seen| seen != n) {
                    return Err(BadResponse::Head);
                }
                length = Some(n);
            }
            Name::TransferEncoding => {
                let last = names::tokens(header.value).last();
                chunked = Some(last.is_some_and(|t| t.eq_ignore_ascii_case(b"chunked")));
            }
            Name::Connection => {
                for token in names::tokens(header.value) {
                    if token.eq_ignore_ascii_case(b"close") {
                        upstream_close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        if version == 0 {
                            upstream_close = false;
                        }
                    } else {
                        named = true;
                    }
                }
            }
            _ => {}
        }
    }
    let framing = if head_request || status == 204 || status == 304 {
        Framing::Empty
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked(Chunked::default()),
            (Some(false), _) | (None, None) => Framing::UntilClose,
            (None, Some(n)) => Framing::Length(n),
        }
    };
    let close_client = close || matches!(framing, Framing::UntilClose);
    // Second pass: the client's head.
    client.clear();
    client.extend_from_slice(b"HTTP/1.1 ");
    client.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    client.push(b' ');
    client.extend_from_slice(res.reason.unwrap_or("").as_bytes());
    client.extend_from_slice(b"\r\n");
    let connection_values = named.then(|| {
        res.headers
            .iter()
            .zip(kinds.iter())
            .filter(|(_, kind)| **kind == Name::Connection)
            .map(|(h, _)| h.value)
            .collect::<Vec<_>>()
    });
    for (header, kind) in res.headers.iter().zip(kinds.iter()) {
        let keep = match kind {
            Name::Connection | Name::KeepAlive | Name::ProxyConnection => false,
            Name::Te | Name::Trailer | Name::Upgrade => false,
            // A chunked body goes through as it came; Content-Length beside
            // Transfer-Encoding is dropped (RFC 9112 6.3).
            Name::ContentLength => chunked.is_none(),
            Name::TransferEncoding => true,
            _ => connection_values
                .as_ref()
                .is_none_or(|values| !names_header(values, header.name)),
        };
        if keep {
            client.extend_from_slice(header.name.as_bytes());
            client.extend_from_slice(b": ");
            client.extend_from_slice(header.value);
            client.extend_from_slice(b"\r\n");
        }
    }
    if !dated {
        date::write_line(client);
    }
    if close_client {
        client.extend_from_slice(b"connection: close\r\n");
    }
    client.extend_from_slice(b"\r\n");
    Ok(Some(Parsed::Final(ResponseHead {
        len,
        status,
        reusable: !upstream_close && !matches!(framing, Framing::UntilClose),
        framing,
        close_client,
    })))
}

/// True when one of the Connection values names `name` for removal.
fn names_header(values: &[&[u8]], name: &str) -> bool {
    values
        .iter()
        .flat_map(|v| names::tokens(v))
        .any(|token| token.eq_ignore_ascii_case(name.as_bytes()))
}

/// The proxy's own answer to a request it could not forward: the service's
/// error `page` (HTML) when it has one for this status, else teal's text
/// (or a maintenance notice, which carries its own body and type).
pub(crate) fn local(
    error: &ProxyError,
    page: Option<&[u8]>,
    head_request: bool,
    close: bool,
    out: &mut Vec<u8>,
) {
    let text = error.body();
    let (content_type, body) = match page {
        Some(page) => (HTML, page),
        None => (error.content_type(), &text[..]),
    };
    let head = Head {
        status: error.status(),
        content_type,
        retry_after: error.retry_after(),
    };
    write_local(&head, body, head_request, close, out);
}

const TEXT: &str = "text/plain; charset=utf-8";
/// The content type of error pages (`ErrorPages`).
const HTML: &str = "text/html; charset=utf-8";

/// A response of the proxy's own with a text/plain `body`.
pub(crate) fn plain(
    status: http::StatusCode,
    body: &[u8],
    head_request: bool,
    close: bool,
    out: &mut Vec<u8>,
) {
    let head = Head {
        status,
        content_type: TEXT,
        retry_after: None,
    };
    write_local(&head, body, head_request, close, out);
}

/// What a response of the proxy's own says besides its body.
struct Head {
    status: http::StatusCode,
    content_type: &'static str,
    retry_after: Option<u32>,
}

fn write_local(head: &Head, body: &[u8], head_request: bool, close: bool, out: &mut Vec<u8>) {
    let status = head.status;
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: ");
    out.extend_from_slice(head.content_type.as_bytes());
    out.extend_from_slice(b"\r\ncontent-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(seconds) = head.retry_after {
        out.extend_from_slice(b"retry-after: ");
        out.extend_from_slice(itoa::Buffer::new().format(seconds).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    date::write_line(out);
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_request {
        out.extend_from_slice(body);
    }
}

/// A 308 to `location`, with no body.
pub(crate) fn redirect(location: &[u8], close: bool, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 308 Permanent Redirect\r\nlocation: ");
    out.extend_from_slice(location);
    out.extend_from_slice(b"\r\ncontent-length: 0\r\n");
    date::write_line(out);
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn final_head(raw: &[u8], head_request: bool, close: bool) -> (ResponseHead, String) {
        let mut out = Vec::new();
        match parse(raw, head_request, close, &mut out) {
            Ok(Parsed::Final(head)) => (head, String::from_utf8(out).unwrap()),
            Ok(Parsed::Partial) => panic!("partial"),
            Ok(Parsed::Interim(_)) => panic!("interim"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn keeps_end_to_end_headers_and_drops_hop_by_hop_ones() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive, x-private\r\n\
            Keep-Alive: timeout=5\r\nX-Private: 1\r\nContent-Type: text/plain\r\n\
            Date: Fri, 04 Dec 2026 16:00:00 GMT\r\n\r\nabc";
        let (head, out) = final_head(raw, false, false);
        assert_eq!(head.len, raw.len() - 3);
        assert!(matches!(head.framing, Framing::Length(3)));
        assert!(head.reusable && !head.close_client);
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\
             Date: Fri, 04 Dec 2026 16:00:00 GMT\r\n\r\n"
        );
    }

    /// The value of the one `date` line in `head`.
    fn date_of(head: &str) -> String {
        let dates: Vec<&str> = head
            .lines()
            .filter_map(|l| l.strip_prefix("date: "))
            .collect();
        assert_eq!(dates.len(), 1, "{head}");
        assert!(httpdate::parse_http_date(dates[0]).is_ok(), "{head}");
        dates[0].to_string()
    }

    #[test]
    fn a_response_without_a_date_gets_one() {
        let (_, out) = final_head(b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", false, true);
        date_of(&out);
        assert!(
            out.starts_with("HTTP/1.1 204 No Content\r\nX-A: 1\r\ndate: "),
            "{out}"
        );
        assert!(out.ends_with("\r\nconnection: close\r\n\r\n"), "{out}");
    }

    #[test]
    fn works_out_the_framing() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n";
        let (head, out) = final_head(chunked, false, false);
        assert!(matches!(head.framing, Framing::Chunked(_)));
        assert!(!out.contains("Content-Length"), "{out}");
        let until_close = b"HTTP/1.1 200 OK\r\n\r\n";
        let (head, out) = final_head(until_close, false, false);
        assert!(matches!(head.framing, Framing::UntilClose));
        assert!(!head.reusable && head.close_client);
        assert!(out.ends_with("connection: close\r\n\r\n"), "{out}");
        let (head, _) = final_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, false);
        assert!(matches!(head.framing, Framing::Empty));
        let (head, _) = final_head(b"HTTP/1.1 304 Not Modified\r\n\r\n", false, false);
        assert!(matches!(head.framing, Framing::Empty) && head.reusable);
        let (head, _) = final_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            false,
            false,
        );
        assert!(!head.reusable && !head.close_client);
        let (head, _) = final_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, true);
        assert!(!head.reusable && head.close_client);
    }

    #[test]
    fn interim_and_bad_heads() {
        let mut out = Vec::new();
        assert!(matches!(
            parse(
                b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1",
                false,
                false,
                &mut out
            ),
            Ok(Parsed::Interim(40))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 101 Switching\r\n\r\n", false, false, &mut out),
            Err(BadResponse::Upgrade)
        ));
        assert!(matches!(
            parse(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                false,
                false,
                &mut out
            ),
            Err(BadResponse::Head)
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-", false, false, &mut out),
            Ok(Parsed::Partial)
        ));
        // Over 64 KiB, whole or not yet (nginx: "upstream sent too big header").
        let mut big = b"HTTP/1.1 200 OK\r\nx-filler: ".to_vec();
        big.resize(MAX_RESPONSE_HEAD + 1, b'x');
        big.extend_from_slice(b"\r\n");
        assert!(matches!(
            parse(&big, false, false, &mut out),
            Err(BadResponse::TooBig)
        ));
        big.extend_from_slice(b"content-length: 0\r\n\r\n");
        assert!(matches!(
            parse(&big, false, false, &mut out),
            Err(BadResponse::TooBig)
        ));
        // fuzz/response_head's first find: status `020` went out as `20`.
        assert!(matches!(
            parse(b"HTTP/1.1 020 nn\r\n\r\n", false, false, &mut out),
            Err(BadResponse::Head)
        ));
    }

    #[test]
    fn local_answers_are_complete_messages() {
        let mut out = Vec::new();
        local(&ProxyError::NoBackend, None, false, true, &mut out);
        let text = String::from_utf8(out).unwrap();
        let date = date_of(&text);
        assert_eq!(
            text,
            format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
                 content-length: 16\r\ndate: {date}\r\nconnection: close\r\n\r\nno live backend\n"
            )
        );
    }
}
