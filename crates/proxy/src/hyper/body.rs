//! The response body hyper's path gives the client, including the wrapper that ends a request's in-flight claim (and returns
//! its upstream connection for reuse) exactly when the response body ends.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::watched::Watched;
use crate::pool::inflight::InFlight;
use crate::upstream::sender::Sender;

/// What a response body's frame fails with: hyper's error, or a watched
/// body's cut (`watched::StreamStalled`).
pub(crate) type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A response body on its way to the client.
pub(crate) enum ProxyBody {
    /// Streamed from an upstream.
    Upstream(Tracked),
    /// Streamed from an upstream to an HTTP/2 client, under a stall watch.
    Watched(Watched),
    /// Written by the proxy itself (errors, upgrades).
    Local(Option<Bytes>),
}

impl ProxyBody {
    pub(crate) fn text(bytes: Bytes) -> ProxyBody {
        ProxyBody::Local(Some(bytes))
    }

    pub(crate) fn empty() -> ProxyBody {
        ProxyBody::Local(None)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ProxyBody::Upstream(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map_err(BodyError::from))),
            ProxyBody::Watched(body) => Pin::new(body).poll_frame(cx),
            ProxyBody::Local(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Upstream(body) => body.inner.is_end_stream(),
            ProxyBody::Watched(body) => body.is_end_stream(),
            ProxyBody::Local(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Upstream(body) => body.inner.size_hint(),
            ProxyBody::Watched(body) => body.size_hint(),
            ProxyBody::Local(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

/// An upstream response body that holds the request's in-flight claim and its
/// upstream connection until it ends or is dropped.
pub(crate) struct Tracked {
    inner: Incoming,
    /// Dropped at the end of the body: that is when drain stops counting it.
    guard: Option<InFlight>,
    /// Returned to the endpoint's idle stack if the body ends cleanly.
    sender: Option<Sender>,
    /// A gRPC call whose verdict (`grpc-status`) comes in the trailers: the
    /// guard is told when they pass (`hyper::grpc`).
    in_trailers: bool,
}

impl Tracked {
    pub(crate) fn new(
        inner: Incoming,
        guard: InFlight,
        sender: Sender,
        in_trailers: bool,
    ) -> Tracked {
        Tracked {
            inner,
            guard: Some(guard),
            sender: Some(sender),
            in_trailers,
        }
    }

    /// Tells the guard the call's verdict once: `error` when it failed.
    fn verdict(&mut self, error: bool) {
        if std::mem::take(&mut self.in_trailers)
            && let Some(guard) = &self.guard
        {
            guard.answered(error);
        }
    }

    /// The body ended cleanly: reuse the connection, release the claim.
    fn finish(&mut self) {
        // A gRPC call that ended without its status failed.
        self.verdict(true);
        if let Some(guard) = self.guard.take()
            && let (Some(sender), Some(index)) = (self.sender.take(), guard.endpoint_index())
        {
            guard.pool().check_in(index, sender);
        }
    }

    /// The body broke or was abandoned: the connection is not reusable.
    /// A gRPC call the client gave up on is not the app's failure.
    fn abandon(&mut self) {
        self.verdict(false);
        self.sender = None;
        self.guard = None;
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if this.in_trailers
            && let Some(Ok(frame)) = &frame
            && let Some(trailers) = frame.trailers_ref()
        {
            let ok = crate::hyper::grpc::status_ok(trailers);
            this.verdict(ok != Some(true));
        }
        match &frame {
            None => this.finish(),
            Some(Ok(_)) if this.inner.is_end_stream() => this.finish(),
            Some(Ok(_)) => {}
            Some(Err(_)) => {
                this.verdict(true);
                this.abandon();
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.finish();
        } else {
            self.abandon();
        }
    }
}
