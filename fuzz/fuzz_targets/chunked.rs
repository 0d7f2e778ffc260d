//! The lean path's chunked body scanner (`lean/framing.rs`), which decides
//! where an upstream's chunked response ends (and so whether the upstream
//! connection is reused) and normalises what it passes on. Checked against a
//! plain reference decoder of the same grammar (RFC 9112 7.1, with the
//! scanner's leniencies: bare LF line ends, any extension), and fed in
//! pieces: the split never changes the answer or the bytes the client gets,
//! no call reports more bytes than it was given, and what the client gets
//! for a whole body is strictly valid (CRLF lines, no extension) and decodes
//! to the same data and trailers.

#![no_main]

use libfuzzer_sys::fuzz_target;
use teal_proxy::fuzzing::Body;

/// A decoded chunked body: where it ends, its data, its trailer lines.
#[derive(Debug, PartialEq)]
struct Decoded {
    end: usize,
    data: Vec<u8>,
    trailers: Vec<Vec<u8>>,
}

/// Decodes the chunked body in `b`: `Ok(None)` when it needs more bytes.
/// `strict`: as a sender must write it (every line ended by CRLF, no
/// extension), else with the scanner's leniencies (bare LF line ends, any
/// extension).
fn reference(b: &[u8], strict: bool) -> Result<Option<Decoded>, ()> {
    let mut at = 0;
    let mut data = Vec::new();
    let mut trailers = Vec::new();
    // The next byte, or "need more".
    macro_rules! next {
        () => {{
            let Some(&c) = b.get(at) else { return Ok(None) };
            at += 1;
            c
        }};
    }
    // A line end: CRLF, or (lenient) LF.
    macro_rules! line_end {
        ($c:expr) => {
            match $c {
                b'\n' if !strict => {}
                b'\r' if next!() == b'\n' => {}
                _ => return Err(()),
            }
        };
    }
    loop {
        let mut size: u64 = 0;
        let mut digits = 0;
        let mut c = next!();
        while let Some(d) = (c as char).to_digit(16) {
            size = size
                .checked_mul(16)
                .ok_or(())?
                .checked_add(u64::from(d))
                .ok_or(())?;
            digits += 1;
            c = next!();
        }
        if digits == 0 {
            return Err(());
        }
        match c {
            b';' | b' ' | b'\t' if !strict => loop {
                match next!() {
                    b'\n' => break,
                    b'\r' if next!() == b'\n' => break,
                    b'\r' => return Err(()),
                    _ => {}
                }
            },
            c => line_end!(c),
        }
        if size == 0 {
            loop {
                let mut line = Vec::new();
                let mut c = next!();
                while c != b'\r' && c != b'\n' {
                    line.push(c);
                    c = next!();
                }
                line_end!(c);
                if line.is_empty() {
                    return Ok(Some(Decoded {
                        end: at,
                        data,
                        trailers,
                    }));
                }
                trailers.push(line);
            }
        }
        if ((b.len() - at) as u64) < size {
            return Ok(None);
        }
        data.extend_from_slice(&b[at..at + size as usize]);
        at += size as usize;
        line_end!(next!());
    }
}

/// Feeds `body` to the scanner in pieces of the lengths in `cuts`, in turn
/// (none: all at once): the end it found, if any, and what the client got.
fn scan(body: &[u8], cuts: &[u8]) -> Result<(Option<usize>, Vec<u8>), ()> {
    let mut scanner = Body::chunked();
    let mut sent = Vec::new();
    let mut at = 0;
    let mut cuts = cuts.iter().cycle();
    while at < body.len() {
        let left = body.len() - at;
        let len = cuts.next().map_or(left, |&n| usize::from(n).clamp(1, left));
        let piece = &body[at..at + len];
        let (used, done) = scanner.consume(piece, &mut sent).map_err(|_| ())?;
        assert!(used <= piece.len(), "used {used} of {}", piece.len());
        assert!(done || used == piece.len(), "stopped early without an end");
        at += used;
        if done {
            return Ok((Some(at), sent));
        }
    }
    Ok((None, sent))
}

/// The scanner agrees with the lenient reference on where `body` ends; what
/// the client got is the same in every split and, for a whole body, is one
/// a strict reader decodes to the same data and trailers.
fn check(body: &[u8], cuts: &[u8], whole: &Result<(Option<usize>, Vec<u8>), ()>) {
    let expected = reference(body, false);
    let found = scan(body, cuts);
    assert_eq!(
        found.as_ref().map(|(end, _)| *end),
        expected.as_ref().map(|d| d.as_ref().map(|d| d.end)),
        "where the body ends, pieces {cuts:?}"
    );
    if let (Ok((Some(_), sent)), Ok((Some(_), whole_sent))) = (&found, whole) {
        assert_eq!(sent, whole_sent, "what the client got, pieces {cuts:?}");
    }
    if let (Ok((Some(_), sent)), Ok(Some(decoded))) = (&found, &expected) {
        let strict = reference(sent, true).expect("the client gets a strictly valid body");
        let strict = strict.expect("a whole body");
        assert_eq!(strict.end, sent.len());
        assert_eq!((&strict.data, &strict.trailers), (&decoded.data, &decoded.trailers));
    }
}

fuzz_target!(|data: &[u8]| {
    // First byte: how many cut lengths follow; then the body.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8).min(rest.len());
    let (cuts, body) = rest.split_at(n);
    let whole = scan(body, &[]);
    check(body, &[], &whole);
    if !cuts.is_empty() {
        check(body, cuts, &whole);
    }
    check(body, &[1], &whole);
});
