//! The request body hyper's path sends upstream: the client's, read up to the
//! body buffer before an instance is chosen (`UpstreamBody::read`), so a client
//! that stalls holds only its own connection and, over h2c, a stream opens an
//! upstream connection only once it can use it. What is left of a larger or
//! chunked body streams after the part read, under the body timeout. The
//! shared `ClientFault` tells the exchange when the client broke or stalled
//! the body, or sent more than the service's `max_body`, so that the failure
//! is counted as the client's.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::error::ProxyError;
use crate::stall::StallTimer;

/// A request body on its way upstream.
#[derive(Default)]
pub(crate) struct UpstreamBody {
    /// Frames read before connecting, sent first.
    read: VecDeque<Frame<Bytes>>,
    /// Data bytes still in `read`.
    read_len: u64,
    /// The rest of the client's body, streamed; None when it was read whole
    /// (or there is none).
    rest: Option<Box<Rest>>,
}

/// The request body's data bytes that arrived from the client, for its
/// access-log line (hyper's path: a chunked or HTTP/2 body has no length up
/// front). Put in the request's extensions by the access log, counted by
/// [`UpstreamBody`] as the body arrives.
#[derive(Debug, Clone, Default)]
pub(crate) struct BodyBytes(Arc<AtomicU64>);

impl BodyBytes {
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, bytes: u64) {
        self.0.store(bytes, Ordering::Relaxed);
    }
}

/// The streamed rest of a client's body.
struct Rest {
    body: Incoming,
    /// Data bytes of the whole body so far, and the service's `max_body`
    /// (`u64::MAX`: none): past it the body is cut, the client's fault.
    seen: u64,
    max: u64,
    /// Fires when the client sends nothing for the body timeout.
    stall: StallTimer,
    fault: Arc<ClientFault>,
    /// Told `seen` as it grows, when the request is logged.
    counted: Option<BodyBytes>,
}

/// Why a body sent upstream ended early: the client's doing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("the client's body failed: {0}")]
    Client(hyper::Error),
    #[error("the client's body stalled")]
    Stalled,
    #[error("the client's body is larger than the service allows")]
    TooLarge,
}

/// Set when the client broke (an invalid chunk, a body cut short) or stalled
/// its streamed body: the upstream exchange then fails, and it is the
/// client's failure.
#[derive(Debug, Default)]
pub(crate) struct ClientFault(AtomicU8);

const BROKEN: u8 = 1;
const STALLED: u8 = 2;
const TOO_LARGE: u8 = 3;

impl ClientFault {
    fn set(&self, fault: u8) {
        self.0.store(fault, Ordering::Release);
    }

    /// What the client gets when the exchange failed because of it.
    pub(crate) fn error(&self) -> Option<ProxyError> {
        match self.0.load(Ordering::Acquire) {
            BROKEN => Some(ProxyError::ClientBody),
            STALLED => Some(ProxyError::BodyTimeout),
            TOO_LARGE => Some(ProxyError::BodyTooLarge),
            _ => None,
        }
    }
}

impl UpstreamBody {
    /// No body (also what a replayable request is sent with).
    pub(crate) fn empty() -> UpstreamBody {
        UpstreamBody::default()
    }

    /// Reads `body` until it ends or `limit` bytes are in, waiting at most
    /// `timeout` for each part; the rest, if any, streams under the same
    /// timeout, with the returned fault telling whether the client broke it.
    /// A body that has ended costs nothing. A body over `max_body` (its
    /// `Content-Length`, or what arrived) is refused here, unsent; when its
    /// streamed rest grows past it, the upstream request is cut (its
    /// connection is not reused) and the fault says so (413). `counted`, when
    /// given, follows the body's bytes as they arrive.
    pub(crate) async fn read(
        mut body: Incoming,
        limit: usize,
        timeout: Duration,
        max_body: Option<u64>,
        counted: Option<BodyBytes>,
    ) -> Result<(UpstreamBody, Option<Arc<ClientFault>>), ProxyError> {
        let max = max_body.unwrap_or(u64::MAX);
        if body.size_hint().lower() > max {
            return Err(ProxyError::BodyTooLarge);
        }
        let mut read = VecDeque::new();
        let mut read_len = 0u64;
        let count = |bytes: u64| {
            if let Some(counted) = &counted {
                counted.set(bytes);
            }
        };
        loop {
            count(read_len);
            if body.is_end_stream() {
                return Ok((UpstreamBody::whole(read, read_len), None));
            }
            if read_len >= limit as u64 {
                break;
            }
            let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
            match tokio::time::timeout(timeout, frame).await {
                Err(_) => return Err(ProxyError::BodyTimeout),
                Ok(None) => return Ok((UpstreamBody::whole(read, read_len), None)),
                Ok(Some(Err(_))) => return Err(ProxyError::ClientBody),
                Ok(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        read_len += data.len() as u64;
                    }
                    if read_len > max {
                        return Err(ProxyError::BodyTooLarge);
                    }
                    read.push_back(frame);
                }
            }
        }
        let fault = Arc::new(ClientFault::default());
        let rest = Rest {
            body,
            seen: read_len,
            max,
            stall: StallTimer::new(timeout),
            fault: Arc::clone(&fault),
            counted,
        };
        let body = UpstreamBody {
            read,
            read_len,
            rest: Some(Box::new(rest)),
        };
        Ok((body, Some(fault)))
    }

    fn whole(read: VecDeque<Frame<Bytes>>, read_len: u64) -> UpstreamBody {
        UpstreamBody {
            read,
            read_len,
            rest: None,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let Some(frame) = this.read.pop_front() {
            if let Some(data) = frame.data_ref() {
                this.read_len -= data.len() as u64;
            }
            return Poll::Ready(Some(Ok(frame)));
        }
        let Some(rest) = &mut this.rest else {
            return Poll::Ready(None);
        };
        match Pin::new(&mut rest.body).poll_frame(cx) {
            Poll::Ready(polled) => {
                rest.stall.progressed();
                if let Some(Ok(data)) = polled.as_ref().map(|f| f.as_ref().map(Frame::data_ref))
                    && let Some(data) = data
                {
                    rest.seen += data.len() as u64;
                    if let Some(counted) = &rest.counted {
                        counted.set(rest.seen);
                    }
                    if rest.seen > rest.max {
                        rest.fault.set(TOO_LARGE);
                        return Poll::Ready(Some(Err(BodyError::TooLarge)));
                    }
                }
                Poll::Ready(polled.map(|frame| {
                    frame.map_err(|error| {
                        rest.fault.set(BROKEN);
                        BodyError::Client(error)
                    })
                }))
            }
            Poll::Pending => match rest.stall.poll_waiting(cx) {
                Poll::Ready(()) => {
                    rest.fault.set(STALLED);
                    Poll::Ready(Some(Err(BodyError::Stalled)))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty()
            && self
                .rest
                .as_ref()
                .is_none_or(|rest| rest.body.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let Some(rest) = &self.rest else {
            return SizeHint::with_exact(self.read_len);
        };
        let inner = rest.body.size_hint();
        let mut hint = SizeHint::new();
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(self.read_len));
        }
        hint.set_lower(inner.lower().saturating_add(self.read_len));
        hint
    }
}
