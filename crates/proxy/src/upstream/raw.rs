//! An upstream connection of the lean path: the socket and the bytes read from
//! it but not used yet. No task drives it; the client connection whose request
//! it carries reads and writes it, and it waits in the endpoint's idle stack
//! in between.

use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::ReadBuf;
use tokio::net::TcpStream;

use super::idle::Reusable;
use crate::error::ProxyError;

/// Read size for response heads and small bodies.
pub(crate) const READ_SIZE: usize = 8 * 1024;

/// One HTTP/1.1 connection to an endpoint.
pub(crate) struct RawConn {
    pub(crate) stream: TcpStream,
    /// Read from the upstream, not yet forwarded.
    pub(crate) buf: BytesMut,
}

impl RawConn {
    /// Connects to `addr` within `timeout`.
    pub(crate) async fn connect(
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<RawConn, ProxyError> {
        Ok(RawConn {
            stream: super::connect(addr, timeout).await?,
            buf: BytesMut::new(),
        })
    }
}

impl Reusable for RawConn {
    /// An idle connection is reusable while nothing can be read from it: an
    /// end of stream (the app closed it) or bytes nobody asked for make it
    /// useless. Costs a system call only when the event loop has seen the
    /// socket become readable.
    fn is_reusable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut byte = [0u8; 1];
        let mut probe = ReadBuf::new(&mut byte);
        matches!(self.stream.poll_peek(&mut cx, &mut probe), Poll::Pending)
    }
}
