//! Where an upstream response body ends. The lean path forwards body bytes as
//! they are (chunked bodies stay chunked) and only needs to know where the
//! message ends, to reuse the upstream connection for the next request.

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
    pub(crate) fn consume(&mut self, data: &[u8]) -> Result<(usize, bool), BadChunk> {
        match self {
            Framing::Empty => Ok((0, true)),
            Framing::Length(left) => {
                let take = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                *left -= take as u64;
                Ok((take, *left == 0))
            }
            Framing::Chunked(chunked) => chunked.scan(data),
            Framing::UntilClose => Ok((data.len(), false)),
        }
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

/// A chunked body that does not follow RFC 9112 7.1.
#[derive(Debug, thiserror::Error)]
#[error("malformed chunked body from upstream")]
pub(crate) struct BadChunk;

/// The position inside a chunked body, kept across reads.
#[derive(Debug, Default)]
pub(crate) struct Chunked {
    state: State,
    /// The size being read, then the data left in the current chunk.
    size: u64,
    digits: u8,
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
    EndLf,
    Done,
}

impl Chunked {
    /// Scans `data`, the next bytes of the body. Returns how many of them
    /// belong to the body (all, unless it ends inside `data`) and whether the
    /// body has ended.
    pub(crate) fn scan(&mut self, data: &[u8]) -> Result<(usize, bool), BadChunk> {
        let mut at = 0;
        while at < data.len() {
            if self.state == State::Data {
                let take = usize::try_from(self.size)
                    .unwrap_or(usize::MAX)
                    .min(data.len() - at);
                at += take;
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let byte = data[at];
            at += 1;
            self.state = self.step(byte)?;
            if self.state == State::Done {
                return Ok((at, true));
            }
        }
        Ok((at, false))
    }

    fn step(&mut self, byte: u8) -> Result<State, BadChunk> {
        Ok(match (self.state, byte) {
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
            (State::Size, b';' | b' ' | b'\t') if self.digits > 0 => State::Extension,
            (State::Size, b'\r') if self.digits > 0 => State::SizeLf,
            (State::Size, b'\n') if self.digits > 0 => self.size_line_done(),
            (State::Extension, b'\r') => State::SizeLf,
            (State::Extension, b'\n') => self.size_line_done(),
            (State::Extension, _) => State::Extension,
            (State::SizeLf, b'\n') => self.size_line_done(),
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataCr | State::DataLf, b'\n') => {
                self.digits = 0;
                State::Size
            }
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart | State::EndLf, b'\n') => State::Done,
            (State::TrailerLine, b'\n') => State::TrailerStart,
            (State::TrailerStart | State::TrailerLine, _) => State::TrailerLine,
            _ => return Err(BadChunk),
        })
    }

    fn size_line_done(&mut self) -> State {
        if self.size == 0 {
            State::TrailerStart
        } else {
            State::Data
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(pieces: &[&[u8]]) -> Result<Vec<(usize, bool)>, BadChunk> {
        let mut chunked = Chunked::default();
        pieces.iter().map(|p| chunked.scan(p)).collect()
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
            let (used, done) = chunked.scan(std::slice::from_ref(b)).unwrap();
            assert_eq!(used, 1);
            assert_eq!(done, i == body.len() - 1);
        }
    }

    #[test]
    fn each_framing_says_where_its_body_ends() {
        let mut length = Framing::Length(5);
        assert_eq!(length.consume(b"abc").unwrap(), (3, false));
        assert_eq!(length.left(), Some(2));
        assert_eq!(length.consume(b"deNEXT").unwrap(), (2, true));
        assert_eq!(Framing::Length(0).consume(b"x").unwrap(), (0, true));
        assert_eq!(Framing::Empty.consume(b"x").unwrap(), (0, true));
        let mut until_close = Framing::UntilClose;
        assert_eq!(until_close.consume(b"all").unwrap(), (3, false));
        assert_eq!(until_close.left(), None);
        let mut chunked = Framing::Chunked(Chunked::default());
        assert_eq!(
            chunked.consume(b"1\r\nx\r\n0\r\n\r\nNEXT").unwrap(),
            (11, true)
        );
    }

    #[test]
    fn rejects_malformed_bodies() {
        assert!(scan_all(&[b"x\r\n"]).is_err());
        assert!(scan_all(&[b"\r\n"]).is_err());
        assert!(scan_all(&[b"2\r\nabX"]).is_err());
        assert!(scan_all(&[b"fffffffffffffffffff\r\n"]).is_err());
    }
}
