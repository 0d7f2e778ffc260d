//! A raw HTTP/2 client over cleartext (h2c with prior knowledge), frame by
//! frame, for hostile-client tests: it sends exactly the frames a test asks
//! for (streams past the advertised limit, no PING answers) and shows every
//! frame the server sends (SETTINGS values, RST_STREAM and GOAWAY codes).
//! Request headers are HPACK literals without indexing; response headers are
//! not decoded beyond their first byte (`:status 200` is static index 8).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::EXCHANGE;

/// The client connection preface (RFC 9113 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const NO_ERROR: u32 = 0x0;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// One frame as received.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The error code of a RST_STREAM or GOAWAY frame.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            RST_STREAM => 0,
            GOAWAY => 4,
            _ => return None,
        };
        let code = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes(code.try_into().ok()?))
    }

    /// The settings a SETTINGS frame carries, by identifier.
    pub fn settings(&self) -> BTreeMap<u16, u32> {
        self.payload
            .chunks_exact(6)
            .map(|s| {
                let id = u16::from_be_bytes([s[0], s[1]]);
                (id, u32::from_be_bytes([s[2], s[3], s[4], s[5]]))
            })
            .collect()
    }

    /// A HEADERS frame whose first field is `:status 200`.
    pub fn is_status_200(&self) -> bool {
        self.kind == HEADERS && self.payload.first() == Some(&0x88)
    }

    pub fn ends_stream(&self) -> bool {
        matches!(self.kind, DATA | HEADERS) && self.flags & END_STREAM != 0
    }
}

/// What happened to one stream, as far as the frames read so far tell.
#[derive(Debug, Default, Clone)]
pub struct StreamOutcome {
    pub status_200: bool,
    pub body: Vec<u8>,
    pub ended: bool,
    pub reset: Option<u32>,
}

/// An h2c client connection, raw.
pub struct H2Raw {
    stream: TcpStream,
    buf: Vec<u8>,
    next_stream: u32,
    /// Whether PINGs are answered (a well-behaved client) or ignored.
    pub answer_pings: bool,
}

impl H2Raw {
    /// Connects and sends the preface and an empty SETTINGS frame.
    pub async fn connect(addr: SocketAddr) -> H2Raw {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        stream.write_all(&hello).await.expect("send the preface");
        H2Raw {
            stream,
            buf: Vec::new(),
            next_stream: 1,
            answer_pings: true,
        }
    }

    /// Reads the server's first SETTINGS frame (acknowledging it) and returns it.
    pub async fn server_settings(&mut self) -> BTreeMap<u16, u32> {
        let read = async {
            loop {
                let frame = self.frame().await.expect("the server's SETTINGS");
                if frame.kind == SETTINGS && frame.flags & ACK == 0 {
                    return frame.settings();
                }
            }
        };
        tokio::time::timeout(EXCHANGE, read)
            .await
            .expect("the server's SETTINGS within the exchange bound")
    }

    /// Opens a stream with a GET for `path` on `authority` (no body); its id.
    pub async fn get(&mut self, authority: &str, path: &str) -> u32 {
        self.get_all(&[(authority, path)]).await[0]
    }

    /// Opens one stream per `(authority, path)`, with all their HEADERS
    /// frames in one write; their ids.
    pub async fn get_all(&mut self, requests: &[(&str, &str)]) -> Vec<u32> {
        let mut out = Vec::new();
        let ids = requests
            .iter()
            .map(|(authority, path)| self.get_frame(&mut out, authority, path))
            .collect();
        self.stream.write_all(&out).await.expect("send HEADERS");
        ids
    }

    /// Rapid reset (CVE-2023-44487): `n` streams, each opened with a GET and
    /// cancelled at once (RST_STREAM CANCEL), all in one write. False when
    /// the server closed before taking them all.
    pub async fn open_and_cancel(&mut self, authority: &str, path: &str, n: usize) -> bool {
        let mut out = Vec::new();
        for _ in 0..n {
            let id = self.get_frame(&mut out, authority, path);
            out.extend(frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
        }
        self.stream.write_all(&out).await.is_ok()
    }

    /// Rapid reset, paced: `n` streams, each opened with a GET and cancelled
    /// `pause` later, one after the other, so that the server takes each
    /// stream before its reset arrives. How many were sent before the server
    /// closed the connection.
    pub async fn open_and_cancel_paced(
        &mut self,
        authority: &str,
        path: &str,
        n: usize,
        pause: Duration,
    ) -> usize {
        for sent in 0..n {
            let mut out = Vec::new();
            let id = self.get_frame(&mut out, authority, path);
            if self.stream.write_all(&out).await.is_err() {
                return sent;
            }
            tokio::time::sleep(pause).await;
            let reset = frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes());
            if self.stream.write_all(&reset).await.is_err() {
                return sent;
            }
        }
        n
    }

    /// Opens the flow-control window of stream `id`, and the connection's,
    /// by `n` bytes (this client sends no WINDOW_UPDATE on its own).
    pub async fn open_window(&mut self, id: u32, n: u32) {
        let mut out = frame(WINDOW_UPDATE, 0, 0, &n.to_be_bytes());
        out.extend(frame(WINDOW_UPDATE, 0, id, &n.to_be_bytes()));
        self.stream
            .write_all(&out)
            .await
            .expect("send WINDOW_UPDATE");
    }

    /// Appends a GET's HEADERS frame on a new stream to `out`; its id.
    fn get_frame(&mut self, out: &mut Vec<u8>, authority: &str, path: &str) -> u32 {
        let id = self.next_stream;
        self.next_stream += 2;
        let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
        literal(&mut block, 0x04, path); // :path
        literal(&mut block, 0x01, authority); // :authority
        out.extend(frame(HEADERS, END_STREAM | END_HEADERS, id, &block));
        id
    }

    /// The next frame from the server, answering PINGs and SETTINGS on the way
    /// (those are returned too); `None` once the server closed (or reset) the
    /// connection. Unbounded: callers bound it.
    pub async fn frame(&mut self) -> Option<Frame> {
        let frame = self.read_frame().await?;
        let reply = match frame.kind {
            PING if frame.flags & ACK == 0 && self.answer_pings => {
                Some(self::frame(PING, ACK, 0, &frame.payload))
            }
            SETTINGS if frame.flags & ACK == 0 => Some(self::frame(SETTINGS, ACK, 0, &[])),
            _ => None,
        };
        if let Some(reply) = reply {
            // The server may have closed its side already: not an error here.
            let _ = self.stream.write_all(&reply).await;
        }
        Some(frame)
    }

    /// Reads frames until stream `id` ends (true), or it is reset, the
    /// connection closes or the exchange bound passes (false).
    pub async fn completes(&mut self, id: u32) -> bool {
        let read = async {
            while let Some(frame) = self.frame().await {
                if frame.stream == id && frame.ends_stream() {
                    return true;
                }
                if frame.stream == id && frame.kind == RST_STREAM {
                    return false;
                }
            }
            false
        };
        tokio::time::timeout(EXCHANGE, read).await.unwrap_or(false)
    }

    /// Every frame until the server closes the connection, or `limit` passed;
    /// and whether it closed.
    pub async fn frames_until_closed(&mut self, limit: Duration) -> (Vec<Frame>, bool) {
        let mut frames = Vec::new();
        let read = async {
            while let Some(frame) = self.frame().await {
                frames.push(frame);
            }
        };
        let closed = tokio::time::timeout(limit, read).await.is_ok();
        (frames, closed)
    }

    async fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() >= 9 + len {
                    let head: Vec<u8> = self.buf.drain(..9).collect();
                    let payload = self.buf.drain(..len).collect();
                    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
                    return Some(Frame {
                        kind: head[3],
                        flags: head[4],
                        stream: stream & 0x7fff_ffff,
                        payload,
                    });
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// Folds frames into what happened to each stream.
pub fn outcomes(frames: &[Frame]) -> BTreeMap<u32, StreamOutcome> {
    let mut streams: BTreeMap<u32, StreamOutcome> = BTreeMap::new();
    for frame in frames.iter().filter(|f| f.stream != 0) {
        let outcome = streams.entry(frame.stream).or_default();
        match frame.kind {
            HEADERS => outcome.status_200 |= frame.is_status_200(),
            DATA => outcome.body.extend_from_slice(&frame.payload),
            RST_STREAM => outcome.reset = frame.error_code(),
            _ => {}
        }
        outcome.ended |= frame.ends_stream();
    }
    streams
}

/// One frame, serialized.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .expect("a small frame")
        .to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend(stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A header field as an HPACK literal without indexing, with the name given
/// by its static table index and a short, plain (not Huffman) value.
fn literal(block: &mut Vec<u8>, name_index: u8, value: &str) {
    let len = u8::try_from(value.len()).ok().filter(|&l| l < 127);
    block.push(name_index);
    block.push(len.expect("a short header value"));
    block.extend_from_slice(value.as_bytes());
}
