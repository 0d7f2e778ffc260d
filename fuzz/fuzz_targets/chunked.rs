//! The lean path's chunked body scanner (`lean/framing.rs`), which decides
//! where an upstream's chunked response ends and so whether the upstream
//! connection is reused. Checked against a plain reference decoder of the same
//! grammar (RFC 9112 7.1, with the scanner's leniencies: bare LF line ends,
//! any extension or trailer bytes), and fed in pieces: the split never changes
//! the answer, and no call reports more bytes than it was given.

#![no_main]

use libfuzzer_sys::fuzz_target;
use teal_proxy::fuzzing::Body;

/// Where the body ends in `b`: `Ok(None)` when it needs more bytes.
fn reference(b: &[u8]) -> Result<Option<usize>, ()> {
    let mut at = 0;
    // The next byte, or "need more".
    macro_rules! next {
        () => {{
            let Some(&c) = b.get(at) else { return Ok(None) };
            at += 1;
            c
        }};
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
            b';' | b' ' | b'\t' => loop {
                match next!() {
                    b'\n' => break,
                    b'\r' if next!() == b'\n' => break,
                    b'\r' => return Err(()),
                    _ => {}
                }
            },
            b'\r' if next!() == b'\n' => {}
            b'\n' => {}
            _ => return Err(()),
        }
        if size == 0 {
            loop {
                match next!() {
                    b'\n' => return Ok(Some(at)),
                    b'\r' if next!() == b'\n' => return Ok(Some(at)),
                    b'\r' => return Err(()),
                    _ => while next!() != b'\n' {},
                }
            }
        }
        if ((b.len() - at) as u64) < size {
            return Ok(None);
        }
        at += size as usize;
        match next!() {
            b'\n' => {}
            b'\r' if next!() == b'\n' => {}
            _ => return Err(()),
        }
    }
}

/// Feeds `body` to the scanner in pieces of the lengths in `cuts`, in turn
/// (none: all at once): the end it found, if any.
fn scan(body: &[u8], cuts: &[u8]) -> Result<Option<usize>, ()> {
    let mut scanner = Body::chunked();
    let mut at = 0;
    let mut cuts = cuts.iter().cycle();
    while at < body.len() {
        let left = body.len() - at;
        let len = cuts.next().map_or(left, |&n| usize::from(n).clamp(1, left));
        let piece = &body[at..at + len];
        let (used, done) = scanner.consume(piece).map_err(|_| ())?;
        assert!(used <= piece.len(), "used {used} of {}", piece.len());
        assert!(done || used == piece.len(), "stopped early without an end");
        at += used;
        if done {
            return Ok(Some(at));
        }
    }
    Ok(None)
}

fuzz_target!(|data: &[u8]| {
    // First byte: how many cut lengths follow; then the body.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8).min(rest.len());
    let (cuts, body) = rest.split_at(n);
    let expected = reference(body);
    assert_eq!(scan(body, &[]), expected, "whole body");
    if !cuts.is_empty() {
        assert_eq!(scan(body, cuts), expected, "in pieces {cuts:?}");
    }
    assert_eq!(scan(body, &[1]), expected, "byte by byte");
});
