//! hyper's path's upstream connections: a `SendRequest` per connection, its
//! driver task on the calling worker, how an idle one tells it can be reused,
//! and the request body it sends (the client's, which notes when the client
//! broke it).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use super::UpstreamCtx;
use super::idle::Reusable;
use crate::error::ProxyError;

/// A sender for requests on one upstream connection.
pub(crate) type Sender = SendRequest<UpstreamBody>;

/// Opens a fresh HTTP/1.1 connection to `addr` and starts its driver.
pub(crate) async fn connect(ctx: &UpstreamCtx, addr: SocketAddr) -> Result<Sender, ProxyError> {
    let stream = crate::upstream::connect(addr, ctx.connect_timeout).await?;
    let (sender, conn) = http1::Builder::new()
        // By bytes, however the head arrives (hyper's read buffer limit alone
        // lets a larger head through when it comes in few reads).
        .max_header_size(super::MAX_RESPONSE_HEAD)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|error| ProxyError::Connect {
            addr,
            cause: io::Error::other(error),
        })?;
    // Runs on the calling worker; a hard stop ends it with that worker.
    ctx.tasks.spawn(async move {
        if let Err(error) = conn.with_upgrades().await {
            tracing::debug!(%addr, %error, "upstream connection ended");
        }
    });
    Ok(sender)
}

impl Reusable for Sender {
    fn is_reusable(&mut self) -> bool {
        self.is_ready()
    }
}

/// A request body on its way upstream.
pub(crate) enum UpstreamBody {
    /// The client's body, streamed. `broken` is set when the client broke
    /// it (an invalid chunk, a body cut short): the upstream exchange then
    /// fails, and the failure is the client's.
    Stream {
        body: Incoming,
        broken: Arc<AtomicBool>,
    },
    /// No body; used for requests that may be replayed on another connection.
    Empty,
}

impl UpstreamBody {
    /// The client's `body`, and the flag that tells whether the client broke it.
    pub(crate) fn stream(body: Incoming) -> (UpstreamBody, Arc<AtomicBool>) {
        let broken = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&broken);
        (UpstreamBody::Stream { body, broken }, flag)
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpstreamBody::Stream { body, broken } => {
                let polled = Pin::new(body).poll_frame(cx);
                if let Poll::Ready(Some(Err(_))) = &polled {
                    broken.store(true, Ordering::Release);
                }
                polled
            }
            UpstreamBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Stream { body, .. } => body.is_end_stream(),
            UpstreamBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Stream { body, .. } => body.size_hint(),
            UpstreamBody::Empty => SizeHint::with_exact(0),
        }
    }
}
