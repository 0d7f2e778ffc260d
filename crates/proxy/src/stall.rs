//! Stalls: a peer that makes no progress for a while is cut. Writes fail
//! after `ProxyOptions::send_timeout`, as nginx's `send_timeout` (toward
//! clients) and `proxy_send_timeout` (toward apps) do: a client that stops
//! reading its response must not keep an upstream connection, and an app that
//! never reads a request body must not keep a client waiting forever. A
//! streamed request body uses the same timer for `body_timeout`
//! (`upstream::body`).
//!
//! The timer counts only while a peer is waited for: a write the socket takes
//! at once (the common case) arms nothing and reads no clock. Here are the
//! timer (`StallTimer`, in `client::ClientIo` and `upstream::body`), a socket
//! wrapper with it (`Timed`, hyper's upstream connections) and the lean path's
//! `write_all`. This module does not decide what a timeout means (504, 408, or
//! a closed client): its callers do.

use std::error::Error;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// Why a write failed: the peer took nothing for the send timeout.
#[derive(Debug, thiserror::Error)]
#[error("the peer took nothing for the send timeout")]
pub(crate) struct SendTimedOut;

/// The error a timed-out write returns: `io::ErrorKind::TimedOut`.
fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, SendTimedOut)
}

/// Whether `error`, or one of its sources, is a write that timed out here.
pub(crate) fn is_send_timeout(error: &(dyn Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<SendTimedOut>() {
            return true;
        }
        if let Some(io) = error.downcast_ref::<io::Error>()
            && io.get_ref().is_some_and(|inner| inner.is::<SendTimedOut>())
        {
            return true;
        }
        next = error.source();
    }
    false
}

/// A stall timer: armed when a peer has to be waited for, disarmed when it
/// makes progress, fired when it made none for the timeout.
pub(crate) struct StallTimer {
    timeout: Duration,
    /// Made the first time a peer is waited for, then reset and reused.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The peer is being waited for (since `sleep`'s deadline minus the
    /// timeout).
    armed: bool,
}

impl StallTimer {
    pub(crate) fn new(timeout: Duration) -> StallTimer {
        StallTimer {
            timeout,
            sleep: None,
            armed: false,
        }
    }

    /// The peer made progress.
    pub(crate) fn progressed(&mut self) {
        self.armed = false;
    }

    /// The peer is waited for: arms the timer (once); Ready when it fired.
    pub(crate) fn poll_waiting(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let sleep = match &mut self.sleep {
            Some(sleep) if self.armed => sleep,
            slot => {
                let deadline = Instant::now() + self.timeout;
                let sleep =
                    slot.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                sleep.as_mut().reset(deadline);
                self.armed = true;
                sleep
            }
        };
        let fired = sleep.as_mut().poll(cx);
        if fired.is_ready() {
            self.armed = false;
        }
        fired
    }

    /// Passes on one poll of a write: a ready write is progress, a pending
    /// one waits, and fails with `TimedOut` when the timer fires.
    pub(crate) fn poll_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.progressed();
            return polled;
        }
        match self.poll_waiting(cx) {
            Poll::Ready(()) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A socket whose writes fail after the send timeout (hyper's upstream
/// connections: an app that does not take a request body; a client socket,
/// `client::ClientIo`: a client that does not read its response).
pub(crate) struct Timed<S> {
    inner: S,
    timer: StallTimer,
}

impl<S> Timed<S> {
    pub(crate) fn new(inner: S, timeout: Duration) -> Timed<S> {
        Timed {
            inner,
            timer: StallTimer::new(timeout),
        }
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    pub(crate) fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Timed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Timed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.timer.poll_write(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.timer.poll_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Writes all of `buf` to `stream`, failing with `TimedOut` when the peer
/// takes nothing for `timeout`. A socket that takes it at once costs no timer.
pub(crate) async fn write_all(
    stream: &TcpStream,
    mut buf: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    while !buf.is_empty() {
        match stream.try_write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                match tokio::time::timeout(timeout, stream.writable()).await {
                    Ok(ready) => ready?,
                    Err(_) => return Err(timed_out()),
                }
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
