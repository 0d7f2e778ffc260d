//! The lean path's response head parsing and framing (`lean/response.rs`,
//! `lean/framing.rs`): any bytes from an app. A final head must lie inside the
//! buffer and become a client head that is one well-formed HTTP/1.1 head with
//! a valid status line and the same body framing (the client reads the body
//! where the proxy does); the body that follows is consumed within what was
//! given, however it arrives.

#![no_main]

use libfuzzer_sys::fuzz_target;
use teal_proxy::fuzzing::{self, Body, BodyKind, Response};

fuzz_target!(|data: &[u8]| {
    // First byte: a HEAD request?, the client asked to close?, a cut length.
    let Some((&flags, buf)) = data.split_first() else {
        return;
    };
    let (head_request, close) = (flags & 1 == 1, flags & 2 == 2);
    let cut = usize::from(flags >> 2).max(1);
    let head = match fuzzing::parse_response(buf, head_request, close) {
        Ok(Response::Final(head)) => head,
        Ok(Response::Interim(len)) => {
            assert!(len > 0 && len <= buf.len());
            return;
        }
        Ok(Response::Partial) | Err(_) => return,
    };
    assert!(head.len > 0 && head.len <= buf.len());
    assert!((200..=999).contains(&head.status), "status {}", head.status);

    // The client head: one complete head with a valid status line.
    let client = &head.client;
    let mut slots = [httparse::EMPTY_HEADER; 110];
    let mut res = httparse::Response::new(&mut slots);
    match res.parse(client) {
        Ok(httparse::Status::Complete(n)) => assert_eq!(n, client.len()),
        other => panic!(
            "client head does not parse: {other:?}\n{}",
            String::from_utf8_lossy(client)
        ),
    }
    assert_eq!((res.version, res.code), (Some(1), Some(head.status)));
    let status_line = client.split(|&b| b == b'\r').next().unwrap_or_default();
    assert!(status_line.starts_with(format!("HTTP/1.1 {:03} ", head.status).as_bytes()));
    for (i, &b) in client.iter().enumerate() {
        assert!(b != b'\n' || (i > 0 && client[i - 1] == b'\r'), "bare LF");
    }
    if head.close_client {
        assert!(
            res.headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("connection")
                    && h.value.eq_ignore_ascii_case(b"close"))
        );
    }

    // The client frames the body as the proxy does (read with the lean
    // path's parser, when the added date and connection lines leave it within
    // its 100 header lines).
    if res.headers.len() <= 100 {
        let Ok(Response::Final(seen)) = fuzzing::parse_response(client, head_request, false) else {
            panic!("the client head is not a final response");
        };
        assert_eq!(seen.status, head.status);
        assert_eq!(seen.body.kind(), head.body.kind());
    }
    if matches!(head.body.kind(), BodyKind::UntilClose) {
        assert!(head.close_client && !head.reusable);
    }

    // The rest of the buffer as the body, in pieces of `cut` bytes.
    let body = &buf[head.len..];
    let kind = head.body.kind();
    let mut framing = head.body;
    let mut at = 0;
    let mut ended = false;
    let mut sent = Vec::new();
    while at < body.len() && !ended {
        let piece = &body[at..(at + cut).min(body.len())];
        let Ok((used, done)) = framing.consume(piece, &mut sent) else {
            assert_eq!(kind, BodyKind::Chunked, "only a chunked body is malformed");
            return;
        };
        assert!(used <= piece.len());
        assert!(done || used == piece.len());
        at += used;
        ended = done;
    }
    match kind {
        BodyKind::Empty => assert!(at == 0 && (ended || body.is_empty())),
        BodyKind::Length(n) => {
            assert_eq!(at as u64, n.min(body.len() as u64));
            assert_eq!(ended, !body.is_empty() && at as u64 == n);
            assert_eq!(framing.left(), Some(n - at as u64));
        }
        BodyKind::UntilClose => assert!(!ended && at == body.len()),
        BodyKind::Chunked => {
            let mut whole = Body::chunked();
            let mut whole_sent = Vec::new();
            let found = whole
                .consume(body, &mut whole_sent)
                .expect("same bytes, same verdict");
            assert_eq!(found, (at, ended));
            assert_eq!(sent, whole_sent, "the client gets the same bytes");
        }
    }
});
