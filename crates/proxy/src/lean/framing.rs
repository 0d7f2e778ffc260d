//! Where an upstream response body ends. The lean path forwards body bytes as
//! they are and only needs to know where the message ends, to reuse the
//! upstream connection for the next request.
//!
//! Chunked bodies stay chunked, and the common one (every line ended by CRLF,
//! no chunk extension) goes through byte for byte. One with what RFC 9112
//! 7.1 allows a recipient to read but not to send on (a bare LF ending a
//! chunk-size, data or trailer line: RFC 9112 2.2) or with chunk extensions is
//! *normalised*, not refused: chunk extensions are dropped and every line
//! ends with CRLF; sizes, data and trailer fields are kept as they came. nginx
//! sends the same when it re-chunks such a body (it reads the same
//! leniencies, and sends no extensions; it also drops trailers). Refusing
//! would mean cutting the client's connection inside a response whose head
//! is already sent, for a body that can be sent on correctly. A body that is
//! not chunked at all (a bad size, a missing line end, a CR alone) is still
//! refused: the relay stops and the client's connection is cut (`BadChunk`),
//! so the client sees an incomplete response, never a different one.
//!
//! The check costs a flag per framing byte; the rewrite, a copy of the piece
//! it is needed for (`Framing::consume` says when).

/// How the response body is delimited.
#[derive(Debug)]
pub(crate) enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked: scanned as it passes.
    Chunked(Chunked),
    /// Until the upstream closes; the client connection closes after it too.
    UntilClose,
}

impl Framing {
    /// Takes `data`, the next bytes read from the upstream: how many of them
    /// belong to the body, and whether the body has ended with them. A body
    /// that runs until close never ends here (the caller sees the close).
    /// For a chunked piece that must be normalised, the bytes to send instead
    /// of `data[..taken]` are appended to `rewritten`.
    #[inline]
    pub(crate) fn consume(
        &mut self,
        data: &[u8],
        rewritten: &mut Vec<u8>,
    ) -> Result<Consumed, BadChunk> {
        let (taken, done) = match self {
            Framing::Empty => (0, true),
            Framing::Length(left) => {
                let take = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                *left -= take as u64;
                (take, *left == 0)
            }
            Framing::Chunked(chunked) => return chunked.relay(data, rewritten),
            Framing::UntilClose => (data.len(), false),
        };
        Ok(Consumed {
            taken,
            done,
            rewritten: false,
        })
    }

    /// Bytes of body still to come, when known.
    pub(crate) fn left(&self) -> Option<u64> {
        match self {
            Framing::Empty => Some(0),
            Framing::Length(left) => Some(*left),
            Framing::Chunked(_) | Framing::UntilClose => None,
        }
    }
}

/// What `Framing::consume` took from a piece of upstream bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Consumed {
    /// Bytes of the piece that belong to the body.
    pub(crate) taken: usize,
    /// The body ended with them.
    pub(crate) done: bool,
    /// They were normalised: send what was appended to `rewritten`, not them.
    pub(crate) rewritten: bool,
}

/// A chunked body that does not follow RFC 9112 7.1.
#[derive(Debug, thiserror::Error)]
#[error("malformed chunked body from upstream")]
pub(crate) struct BadChunk;

/// The position inside a chunked body, kept across reads.
#[derive(Debug, Default, Clone)]
pub(crate) struct Chunked {
    state: State,
    /// The size being read, then the data left in the current chunk.
    size: u64,
    digits: u8,
    /// The piece being scanned has a line that is not `HEX CRLF` or
    /// `field CRLF`: it is sent normalised.
    irregular: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Size,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// Where a scan's output goes: nowhere (the check) or a buffer (the rewrite).
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for () {
    fn put(&mut self, _: &[u8]) {}
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Chunked {
    /// Scans `data`, the next bytes of the body: how many of them belong to
    /// it (all, unless it ends inside `data`) and whether it has ended; when
    /// they must be normalised, the normalised bytes are appended to `rewritten`.
    // Out of line: keeps `Framing::consume` small enough to inline where
    // most bodies have a length.
    #[inline(never)]
    pub(crate) fn relay(
        &mut self,
        data: &[u8],
        rewritten: &mut Vec<u8>,
    ) -> Result<Consumed, BadChunk> {
        let before = self.clone();
        let (taken, done) = self.scan(data, &mut ())?;
        if !self.irregular {
            return Ok(Consumed {
                taken,
                done,
                rewritten: false,
            });
        }
        // Again from where this piece began, writing the normalised bytes.
        *self = before;
        self.scan(&data[..taken], rewritten)?;
        self.irregular = false;
        Ok(Consumed {
            taken,
            done,
            rewritten: true,
        })
    }

    /// Scans `data`, putting the normalised body into `out`. Returns how many
    /// bytes belong to the body and whether it has ended.
    fn scan(&mut self, data: &[u8], out: &mut impl Sink) -> Result<(usize, bool), BadChunk> {
        let mut at = 0;
        while at < data.len() {
            if self.state == State::Data {
                let take = usize::try_from(self.size)
                    .unwrap_or(usize::MAX)
                    .min(data.len() - at);
                out.put(&data[at..at + take]);
                at += take;
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let byte = data[at];
            at += 1;
            self.state = self.step(byte, out)?;
            if self.state == State::Done {
                return Ok((at, true));
            }
        }
        Ok((at, false))
    }

    /// One framing byte: the next state, and what goes out for it. A regular
    /// line goes out as it came; a bare LF goes out as CRLF, an extension as
    /// nothing. Byte by byte, so a line split across pieces, one sent as it
    /// came and the next rewritten, still goes out whole.
    fn step(&mut self, byte: u8, out: &mut impl Sink) -> Result<State, BadChunk> {
        let state = match (self.state, byte) {
            (State::Size, b) if b.is_ascii_hexdigit() => {
                let digit = (b as char).to_digit(16).unwrap_or(0);
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|n| n.checked_add(u64::from(digit)))
                    .ok_or(BadChunk)?;
                self.digits = self.digits.saturating_add(1);
                State::Size
            }
            (State::Size, b';' | b' ' | b'\t') if self.digits > 0 => {
                self.irregular = true;
                return Ok(State::Extension);
            }
            (State::Size, b'\r') if self.digits > 0 => State::SizeLf,
            (State::Extension, b'\r') => State::SizeLf,
            (State::Size, b'\n') if self.digits > 0 => {
                return Ok(self.bare_lf(out, self.line_done()));
            }
            (State::Extension, b'\n') => return Ok(self.bare_lf(out, self.line_done())),
            (State::Extension, _) => {
                self.irregular = true;
                return Ok(State::Extension);
            }
            (State::SizeLf, b'\n') => self.line_done(),
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataCr, b'\n') => {
                let next = self.next_chunk();
                return Ok(self.bare_lf(out, next));
            }
            (State::DataLf, b'\n') => self.next_chunk(),
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart, b'\n') => return Ok(self.bare_lf(out, State::Done)),
            (State::EndLf, b'\n') => State::Done,
            (State::TrailerLine, b'\r') => State::TrailerLf,
            (State::TrailerLine, b'\n') => return Ok(self.bare_lf(out, State::TrailerStart)),
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::TrailerStart | State::TrailerLine, _) => State::TrailerLine,
            _ => return Err(BadChunk),
        };
        out.put(std::slice::from_ref(&byte));
        Ok(state)
    }

    /// A line ended by LF alone (RFC 9112 2.2 lets a recipient read it): it
    /// goes out ended by CRLF.
    fn bare_lf(&mut self, out: &mut impl Sink, next: State) -> State {
        self.irregular = true;
        out.put(b"\r\n");
        next
    }

    /// The chunk-size line ended.
    fn line_done(&self) -> State {
        if self.size == 0 {
            State::TrailerStart
        } else {
            State::Data
        }
    }

    /// A chunk's data and its line end are through.
    fn next_chunk(&mut self) -> State {
        self.digits = 0;
        State::Size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(pieces: &[&[u8]]) -> Result<Vec<(usize, bool)>, BadChunk> {
        let mut chunked = Chunked::default();
        pieces.iter().map(|p| chunked.scan(p, &mut ())).collect()
    }

    /// What the client gets for `pieces`, as the relay sends it, and
    /// whether the body ended.
    fn relayed(pieces: &[&[u8]]) -> Result<(Vec<u8>, bool), BadChunk> {
        let mut chunked = Chunked::default();
        let mut sent = Vec::new();
        for piece in pieces {
            let mut rewritten = Vec::new();
            let consumed = chunked.relay(piece, &mut rewritten)?;
            if consumed.rewritten {
                sent.extend_from_slice(&rewritten);
            } else {
                sent.extend_from_slice(&piece[..consumed.taken]);
            }
            if consumed.done {
                return Ok((sent, true));
            }
        }
        Ok((sent, false))
    }

    fn consumed(taken: usize, done: bool) -> Consumed {
        Consumed {
            taken,
            done,
            rewritten: false,
        }
    }

    #[test]
    fn finds_the_end_of_a_body_in_one_piece() {
        let body = b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\nNEXT";
        let found = scan_all(&[body]).unwrap();
        assert_eq!(found, [(body.len() - 4, true)]);
    }

    #[test]
    fn finds_the_end_across_pieces_and_trailers() {
        let pieces: [&[u8]; 5] = [b"3\r", b"\nab", b"c\r\n0\r\nx-t", b"railer: 1\r\n", b"\r\n"];
        let found = scan_all(&pieces).unwrap();
        assert_eq!(
            found,
            [(2, false), (3, false), (9, false), (11, false), (2, true)]
        );
    }

    #[test]
    fn byte_by_byte_gives_the_same_end() {
        let body = b"A\r\n0123456789\r\n0\r\n\r\n";
        let mut chunked = Chunked::default();
        for (i, b) in body.iter().enumerate() {
            let (used, done) = chunked.scan(std::slice::from_ref(b), &mut ()).unwrap();
            assert_eq!(used, 1);
            assert_eq!(done, i == body.len() - 1);
        }
    }

    #[test]
    fn each_framing_says_where_its_body_ends() {
        let out = &mut Vec::new();
        let mut length = Framing::Length(5);
        assert_eq!(length.consume(b"abc", out).unwrap(), consumed(3, false));
        assert_eq!(length.left(), Some(2));
        assert_eq!(length.consume(b"deNEXT", out).unwrap(), consumed(2, true));
        assert_eq!(
            Framing::Length(0).consume(b"x", out).unwrap(),
            consumed(0, true)
        );
        assert_eq!(
            Framing::Empty.consume(b"x", out).unwrap(),
            consumed(0, true)
        );
        let mut until_close = Framing::UntilClose;
        assert_eq!(
            until_close.consume(b"all", out).unwrap(),
            consumed(3, false)
        );
        assert_eq!(until_close.left(), None);
        let mut chunked = Framing::Chunked(Chunked::default());
        assert_eq!(
            chunked.consume(b"1\r\nx\r\n0\r\n\r\nNEXT", out).unwrap(),
            consumed(11, true)
        );
        assert!(out.is_empty(), "nothing rewritten");
    }

    #[test]
    fn a_regular_chunked_body_goes_through_as_it_came() {
        let body = b"5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n";
        let mut chunked = Chunked::default();
        let mut rewritten = Vec::new();
        let found = chunked.relay(body, &mut rewritten).unwrap();
        assert_eq!(found, consumed(body.len(), true));
        assert!(rewritten.is_empty());
    }

    #[test]
    fn bare_lf_lines_and_extensions_are_normalised() {
        let body: &[u8] =
            b"5\nhello\n1a;ext=\"x\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0 ; last\nx-t: 1\n\nNEXT";
        let expected: &[u8] =
            b"5\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-t: 1\r\n\r\n";
        assert_eq!(relayed(&[body]).unwrap(), (expected.to_vec(), true));
        // In every split, byte by byte too, the client gets the same bytes.
        for cut in 1..body.len() {
            let (a, b) = body.split_at(cut);
            assert_eq!(
                relayed(&[a, b]).unwrap(),
                (expected.to_vec(), true),
                "cut {cut}"
            );
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(relayed(&bytes).unwrap(), (expected.to_vec(), true));
    }

    #[test]
    fn rejects_malformed_bodies() {
        assert!(scan_all(&[b"x\r\n"]).is_err());
        assert!(scan_all(&[b"\r\n"]).is_err());
        assert!(scan_all(&[b"2\r\nabX"]).is_err());
        assert!(scan_all(&[b"fffffffffffffffffff\r\n"]).is_err());
        assert!(scan_all(&[b"1\r\nx\r\n0\r\nx-t: a\rb\r\n\r\n"]).is_err());
    }
}
