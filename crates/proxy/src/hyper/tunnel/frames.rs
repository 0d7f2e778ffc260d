//! WebSocket frame boundaries in one direction of a tunnel (RFC 6455 5.2),
//! so that the proxy's own close frame goes between two frames and never
//! into the middle of one it is relaying. Only the headers are read (FIN,
//! opcode, mask bit, the 7-, 16- or 64-bit length, the mask key); payloads
//! are counted, never copied or unmasked. Also builds that close frame.
//!
//! A stream that is not valid framing (an unknown opcode, a control frame
//! over 125 bytes or fragmented) stops being tracked: such a tunnel gets no
//! close frame, its sockets are simply closed.

#[cfg(test)]
mod tests;

/// Close code 1001, "going away" (RFC 6455 7.4.1).
pub(crate) const GOING_AWAY: u16 = 1001;

/// The close frame's reason text.
pub(crate) const REASON: &[u8] = b"going away";

/// The longest header: 2 bytes, a 64-bit length, a mask key.
const MAX_HEADER: usize = 14;

const OP_CLOSE: u8 = 0x8;

/// Where one direction's stream is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Reading a header; `have` bytes of it so far (0: at a frame boundary).
    Header { buf: [u8; MAX_HEADER], have: usize },
    /// Inside a payload: `left` bytes to go; `close` for a close frame's.
    Payload { left: u64, close: bool },
    /// Not WebSocket framing: no longer tracked.
    Lost,
}

/// The frame tracker of one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frames {
    state: State,
    /// A whole close frame went by.
    saw_close: bool,
}

impl Default for Frames {
    fn default() -> Frames {
        Frames {
            state: State::Header {
                buf: [0; MAX_HEADER],
                have: 0,
            },
            saw_close: false,
        }
    }
}

impl Frames {
    /// Between two frames: a close frame may go here.
    pub(crate) fn at_boundary(&self) -> bool {
        matches!(self.state, State::Header { have: 0, .. })
    }

    /// The stream is not WebSocket framing.
    pub(crate) fn lost(&self) -> bool {
        self.state == State::Lost
    }

    /// A whole close frame has gone by in this direction.
    pub(crate) fn saw_close(&self) -> bool {
        self.saw_close
    }

    /// Follows `data`, the next bytes of the stream. With `stop_at_boundary`
    /// it stops at the first frame boundary (at once when already at one).
    /// Returns how many bytes it followed.
    pub(crate) fn feed(&mut self, data: &[u8], stop_at_boundary: bool) -> usize {
        let mut at = 0;
        while at < data.len() {
            if stop_at_boundary && self.at_boundary() {
                return at;
            }
            match &mut self.state {
                State::Lost => return data.len(),
                State::Payload { left, close } => {
                    let take = (*left).min((data.len() - at) as u64);
                    at += take as usize;
                    *left -= take;
                    if *left == 0 {
                        self.saw_close |= *close;
                        self.state = Frames::default().state;
                    }
                }
                State::Header { buf, have } => {
                    buf[*have] = data[at];
                    *have += 1;
                    at += 1;
                    let header = *buf;
                    let have = *have;
                    self.header(&header[..have]);
                }
            }
        }
        at
    }

    /// Looks at the header bytes read so far; moves on to the payload once
    /// the header is whole.
    fn header(&mut self, head: &[u8]) {
        if head.len() == 1 {
            let opcode = head[0] & 0x0F;
            let fin = head[0] & 0x80 != 0;
            let known = matches!(opcode, 0x0..=0x2 | 0x8..=0xA);
            if !known || (opcode >= 0x8 && !fin) {
                self.state = State::Lost;
            }
            return;
        }
        let short = head[1] & 0x7F;
        let masked = head[1] & 0x80 != 0;
        let control = head[0] & 0x08 != 0;
        if control && short > 125 {
            self.state = State::Lost;
            return;
        }
        let extended = match short {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let whole = 2 + extended + if masked { 4 } else { 0 };
        if head.len() < whole {
            return;
        }
        let left = match extended {
            0 => u64::from(short),
            2 => u64::from(u16::from_be_bytes([head[2], head[3]])),
            _ => {
                let mut bytes = [0; 8];
                bytes.copy_from_slice(&head[2..10]);
                let n = u64::from_be_bytes(bytes);
                if n >> 63 != 0 {
                    self.state = State::Lost;
                    return;
                }
                n
            }
        };
        let close = head[0] & 0x0F == OP_CLOSE;
        if left == 0 {
            self.saw_close |= close;
            self.state = Frames::default().state;
        } else {
            self.state = State::Payload { left, close };
        }
    }
}

/// The close frame the proxy sends: code 1001 and its reason. Masked with
/// `mask` (toward the app: a client's frames are masked), unmasked without
/// (toward the client).
pub(crate) fn close_frame(mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut payload = GOING_AWAY.to_be_bytes().to_vec();
    payload.extend_from_slice(REASON);
    let mut frame = vec![0x80 | OP_CLOSE];
    match mask {
        Some(key) => {
            frame.push(0x80 | payload.len() as u8);
            frame.extend_from_slice(&key);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => {
            frame.push(payload.len() as u8);
            frame.extend_from_slice(&payload);
        }
    }
    frame
}
