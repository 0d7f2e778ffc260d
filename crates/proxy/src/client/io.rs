//! A client socket with bytes already read from it put back in front: how a
//! connection moves from the lean path to hyper's, from one hyper connection
//! to the next across parking, and into a websocket tunnel, without losing or
//! reordering a byte. Its writes fail after the send timeout
//! (`crate::stall`): hyper writes responses through it, so a client
//! that stops reading is cut, and its upstream connection freed with it.
//! The socket is plain TCP or TLS over TCP ([`ClientStream`]): hyper's path
//! serves both the same way, the lean path only plain ones.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::stall::Timed;

/// A client's socket: plain TCP, or TLS over TCP (the TLS listener's).
pub(crate) enum ClientStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl ClientStream {
    /// The TCP socket under it.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(stream) => stream,
            ClientStream::Tls(tls) => tls.get_ref().0,
        }
    }

    /// Decrypted bytes already read from the socket and not yet taken: a
    /// TLS connection with some must not wait for the socket to be readable.
    pub(crate) fn has_buffered(&mut self) -> bool {
        match self {
            ClientStream::Plain(_) => false,
            ClientStream::Tls(tls) => tls
                .get_mut()
                .1
                .process_new_packets()
                .map_or(true, |state| state.plaintext_bytes_to_read() > 0),
        }
    }
}

macro_rules! each {
    ($stream:expr, $s:ident => $body:expr) => {
        match $stream {
            ClientStream::Plain($s) => $body,
            ClientStream::Tls($s) => $body,
        }
    };
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        each!(self, s => s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
}

/// A client socket, with bytes already read from it (by hyper, before a park or
/// an upgrade) put back in front. A client that takes none of a write for the
/// send timeout is cut.
pub(crate) struct ClientIo {
    prefix: Bytes,
    stream: Timed<ClientStream>,
}

impl ClientIo {
    pub(crate) fn new(prefix: Bytes, stream: TcpStream, send_timeout: Duration) -> ClientIo {
        ClientIo::over(prefix, ClientStream::Plain(stream), send_timeout)
    }

    /// A TLS connection, or any [`ClientStream`].
    pub(crate) fn over(prefix: Bytes, stream: ClientStream, send_timeout: Duration) -> ClientIo {
        ClientIo {
            prefix,
            stream: Timed::new(stream, send_timeout),
        }
    }

    /// The socket under it.
    pub(crate) fn stream(&self) -> &ClientStream {
        self.stream.get_ref()
    }

    pub(crate) fn stream_mut(&mut self) -> &mut ClientStream {
        self.stream.get_mut()
    }

    /// The socket, for a successor (with no bytes put back: see `has_prefix`).
    pub(crate) fn into_stream(self) -> ClientStream {
        self.stream.into_inner()
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
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
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
