//! hyper's path's upstream connections: a `SendRequest` per connection, its
//! driver task on the calling worker, and how an idle one tells it can be
//! reused. HTTP/1.1 by default; HTTP/2 (`h2`) for an h2c service, where one
//! connection carries many requests at once. Its writes fail after the send
//! timeout (`crate::stall`): an app that does not take a request body gets a
//! 504, not a client held forever. The request body it sends is `body`'s.

use std::io;
use std::net::SocketAddr;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::TrySendError;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use super::UpstreamCtx;
use super::body::UpstreamBody;
use super::h2::H2Sender;
use super::idle::Reusable;
use crate::error::ProxyError;
use crate::stall::Timed;

/// A sender for requests on one upstream connection.
pub(crate) enum Sender {
    Http1(SendRequest<UpstreamBody>),
    /// A clone of a worker's shared HTTP/2 connection (`h2::H2Lanes`).
    Http2(H2Sender),
}

impl Sender {
    /// Sends `req`; hands it back when it was not sent.
    pub(crate) async fn try_send_request(
        &mut self,
        req: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, TrySendError<Request<UpstreamBody>>> {
        match self {
            Sender::Http1(sender) => sender.try_send_request(req).await,
            Sender::Http2(sender) => sender.try_send_request(req).await,
        }
    }

    pub(crate) fn is_ready(&self) -> bool {
        match self {
            Sender::Http1(sender) => sender.is_ready(),
            Sender::Http2(sender) => sender.is_ready(),
        }
    }

    /// An HTTP/1.1 connection that can go back to an idle stack: an HTTP/2
    /// one stays shared in its lane instead.
    pub(crate) fn into_http1(self) -> Option<SendRequest<UpstreamBody>> {
        match self {
            Sender::Http1(sender) => Some(sender),
            Sender::Http2(_) => None,
        }
    }
}

/// Opens a fresh HTTP/1.1 connection to `addr` and starts its driver.
pub(crate) async fn connect(ctx: &UpstreamCtx, addr: SocketAddr) -> Result<Sender, ProxyError> {
    let stream = crate::upstream::connect(addr, ctx.connect_timeout).await?;
    let (sender, conn) = http1::Builder::new()
        // By bytes, however the head arrives (hyper's read buffer limit alone
        // lets a larger head through when it comes in few reads).
        .max_header_size(super::MAX_RESPONSE_HEAD)
        .max_headers(super::max_lines(super::MAX_RESPONSE_HEAD))
        // The app's spelling of its header names rides on the response (an
        // extension hyper's server writes them back with), so an HTTP/1.1
        // client sees `X-Custom-Header` as the app wrote it, as the lean path
        // and nginx pass it.
        .preserve_header_case(true)
        .handshake(TokioIo::new(Timed::new(stream, ctx.send_timeout)))
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
    Ok(Sender::Http1(sender))
}

impl Reusable for Sender {
    fn is_reusable(&mut self) -> bool {
        self.is_ready()
    }
}
