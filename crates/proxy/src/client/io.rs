//! A client socket with bytes already read from it put back in front: how a
//! connection moves from the lean path to hyper's, from one hyper connection
//! to the next across parking, and into a websocket tunnel, without losing or
//! reordering a byte. Its writes fail after the send timeout
//! (`crate::stall`): hyper writes responses through it, so a client
//! that stops reading is cut, and its upstream connection freed with it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::stall::StallTimer;

/// A client socket, with bytes already read from it (by hyper, before a park or
/// an upgrade) put back in front.
pub(crate) struct ClientIo {
    prefix: Bytes,
    pub(crate) stream: TcpStream,
    /// A client that takes none of a write for the send timeout is cut.
    timer: StallTimer,
}

impl ClientIo {
    pub(crate) fn new(prefix: Bytes, stream: TcpStream, send_timeout: Duration) -> ClientIo {
        ClientIo {
            prefix,
            stream,
            timer: StallTimer::new(send_timeout),
        }
    }

    pub(crate) fn has_prefix(&self) -> bool {
        !self.prefix.is_empty()
    }

    /// Puts `read` (bytes taken from this socket and not used) back in front.
    pub(crate) fn put_back(mut self, read: Bytes) -> ClientIo {
        if read.is_empty() {
            return self;
        }
        if self.prefix.is_empty() {
            self.prefix = read;
        } else {
            let mut joined = BytesMut::with_capacity(read.len() + self.prefix.len());
            joined.extend_from_slice(&read);
            joined.extend_from_slice(&self.prefix);
            self.prefix = joined.freeze();
        }
        self
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.timer.poll_write(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.timer.poll_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
