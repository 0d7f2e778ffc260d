//! The lean path's request head parsing and framing (`lean/request.rs`): any
//! bytes from a client. A head the lean path forwards must lie inside the
//! buffer, be decided by the head alone, and become an upstream head that is
//! one well-formed HTTP/1.1 head with one Host, the same body length and no
//! hop-by-hop or framing header the proxy does not stand behind.

#![no_main]

use libfuzzer_sys::fuzz_target;
use teal_proxy::fuzzing::{self, Request};

/// Headers the upstream head must not carry (dropped, or a fallback).
const NEVER_FORWARDED: [&str; 8] = [
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

fuzz_target!(|data: &[u8]| {
    let Request::Ready(head) = fuzzing::parse_request(data) else {
        return;
    };
    assert!(head.len > 0 && head.len <= data.len());
    assert!(head.host.start <= head.host.end && head.host.end <= head.len);
    assert!(
        head.content_length <= 64 * 1024,
        "a large body stays on the lean path"
    );
    assert!(!head.replayable || head.content_length == 0);

    // Decided by the head alone, and never before its end.
    let Request::Ready(alone) = fuzzing::parse_request(&data[..head.len]) else {
        panic!("the head alone is not ready");
    };
    assert_eq!(
        (
            alone.len,
            &alone.host,
            alone.content_length,
            &alone.upstream
        ),
        (head.len, &head.host, head.content_length, &head.upstream)
    );
    assert!(!matches!(
        fuzzing::parse_request(&data[..head.len - 1]),
        Request::Ready(_)
    ));

    // The upstream head: one complete head, CRLF lines only.
    let upstream = &head.upstream;
    let mut slots = [httparse::EMPTY_HEADER; 80];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(upstream) {
        Ok(httparse::Status::Complete(n)) => assert_eq!(n, upstream.len()),
        other => panic!("upstream head does not parse: {other:?}"),
    }
    assert_eq!(req.version, Some(1));
    assert!(req.path.is_some_and(|p| p.starts_with('/')));
    for (i, &b) in upstream.iter().enumerate() {
        assert!(b != b'\n' || (i > 0 && upstream[i - 1] == b'\r'), "bare LF");
        assert!(b != b'\r' || upstream.get(i + 1) == Some(&b'\n'), "bare CR");
    }
    let values = |name: &str| -> Vec<&[u8]> {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
            .collect()
    };
    assert_eq!(values("host"), [&data[head.host.clone()]]);
    for name in NEVER_FORWARDED {
        assert!(values(name).is_empty(), "{name} forwarded");
    }
    match values("content-length").as_slice() {
        [] => assert_eq!(head.content_length, 0),
        [one] => {
            let text = std::str::from_utf8(one).expect("a length is ASCII");
            assert_eq!(text.trim().parse::<u64>().ok(), Some(head.content_length));
        }
        more => panic!("{} content-length lines forwarded", more.len()),
    }
    let forwarded_for = values("x-forwarded-for");
    assert_eq!(forwarded_for.len(), 1);
    assert!(forwarded_for[0].ends_with(fuzzing::CLIENT_IP.to_string().as_bytes()));
    assert_eq!(values("x-forwarded-proto"), [&b"http"[..]]);
    assert_eq!(values("x-forwarded-host"), [&data[head.host.clone()]]);

    // Another lean hop reads the same request from it (unless the added
    // X-Forwarded-* lines take it past the lean path's 64 header lines).
    if req.headers.len() > 64 {
        return;
    }
    let Request::Ready(again) = fuzzing::parse_request(upstream) else {
        panic!("the upstream head is not a lean request");
    };
    assert_eq!(again.len, upstream.len());
    assert_eq!(again.content_length, head.content_length);
    assert_eq!(&upstream[again.host.clone()], &data[head.host.clone()]);
    assert_eq!(
        (again.head_method, again.replayable),
        (head.head_method, head.replayable)
    );
});
