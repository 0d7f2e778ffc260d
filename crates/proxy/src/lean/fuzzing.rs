//! Thin wrappers around the lean path's parsers for the fuzz targets in
//! `fuzz/` (cargo-fuzz): the request head (`request::parse`), the response
//! head (`response::parse`) and the response body framing (`framing`). Not an
//! API: hidden from the docs, it copies the parsers' answers into plain public
//! types and adds no behaviour, so the targets test exactly what serves
//! traffic. Nothing inside the crate uses it.

use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;

use super::framing::{self, Chunked};
use super::{request, response};
use crate::UnderscoreHeaders;
use crate::client::ClientAddr;

/// The client address the request wrapper forwards for.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

/// What the lean path makes of a client buffer.
#[derive(Debug)]
pub enum Request {
    /// Not a whole head yet.
    Partial,
    /// Handed to hyper's path.
    Fallback,
    /// Forwarded by the lean path.
    Ready(RequestHead),
}

/// A request head the lean path forwards.
#[derive(Debug)]
pub struct RequestHead {
    /// Bytes of the head in the client buffer.
    pub len: usize,
    /// Where the Host value is in the client buffer.
    pub host: Range<usize>,
    /// Bytes of body forwarded after the head.
    pub content_length: u64,
    pub head_method: bool,
    pub replayable: bool,
    pub close: bool,
    /// The head written for the upstream.
    pub upstream: Vec<u8>,
}

/// Parses a client buffer as the lean path does (header names with an
/// underscore dropped, the default).
pub fn parse_request(buf: &[u8]) -> Request {
    let client = ClientAddr::new(IpAddr::V4(CLIENT_IP));
    let mut upstream = Vec::new();
    match request::parse(buf, &client, &mut upstream, UnderscoreHeaders::Drop) {
        request::Parsed::Partial => Request::Partial,
        request::Parsed::Fallback => Request::Fallback,
        request::Parsed::Ready(head) => Request::Ready(RequestHead {
            len: head.len,
            host: head.host,
            content_length: head.content_length,
            head_method: head.head_method,
            replayable: head.replayable,
            close: head.close,
            upstream,
        }),
    }
}

/// What the lean path makes of an upstream buffer.
#[derive(Debug)]
pub enum Response {
    Partial,
    /// An interim (1xx) head of this many bytes, dropped.
    Interim(usize),
    Final(ResponseHead),
}

/// A final response head, as the lean path passes it on.
#[derive(Debug)]
pub struct ResponseHead {
    /// Bytes of the head in the upstream buffer.
    pub len: usize,
    pub status: u16,
    /// Where its body ends.
    pub body: Body,
    pub reusable: bool,
    pub close_client: bool,
    /// The head written for the client.
    pub client: Vec<u8>,
}

/// Parses an upstream buffer as the lean path does; `Err` is the refusal's
/// message (the client gets a 502).
pub fn parse_response(buf: &[u8], head_request: bool, close: bool) -> Result<Response, String> {
    let mut client = Vec::new();
    match response::parse(buf, head_request, close, &mut client) {
        Ok(response::Parsed::Partial) => Ok(Response::Partial),
        Ok(response::Parsed::Interim(len)) => Ok(Response::Interim(len)),
        Ok(response::Parsed::Final(head)) => Ok(Response::Final(ResponseHead {
            len: head.len,
            status: head.status,
            body: Body(head.framing),
            reusable: head.reusable,
            close_client: head.close_client,
            client,
        })),
        Err(error) => Err(error.to_string()),
    }
}

/// How a response body is delimited, and the position in it.
#[derive(Debug)]
pub struct Body(framing::Framing);

/// The kinds of [`Body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

impl Body {
    /// A chunked body from its start.
    pub fn chunked() -> Body {
        Body(framing::Framing::Chunked(Chunked::default()))
    }

    pub fn kind(&self) -> BodyKind {
        match self.0 {
            framing::Framing::Empty => BodyKind::Empty,
            framing::Framing::Length(n) => BodyKind::Length(n),
            framing::Framing::Chunked(_) => BodyKind::Chunked,
            framing::Framing::UntilClose => BodyKind::UntilClose,
        }
    }

    /// The next bytes from upstream: how many belong to the body, and whether
    /// it ended with them; `Err` for a malformed chunked body. What the client
    /// gets for them is appended to `sent`: the bytes themselves, or the
    /// normalised chunked piece.
    pub fn consume(&mut self, data: &[u8], sent: &mut Vec<u8>) -> Result<(usize, bool), String> {
        let mut rewritten = Vec::new();
        let consumed = self
            .0
            .consume(data, &mut rewritten)
            .map_err(|e| e.to_string())?;
        if consumed.rewritten {
            sent.extend_from_slice(&rewritten);
        } else {
            sent.extend_from_slice(&data[..consumed.taken]);
        }
        Ok((consumed.taken, consumed.done))
    }

    /// Bytes still to come, when known.
    pub fn left(&self) -> Option<u64> {
        self.0.left()
    }
}
