//! hyper's path's upstream connections: a `SendRequest` per connection, its
//! driver task on the calling worker, and how an idle one tells it can be
//! reused. Its writes fail after the send timeout (`crate::stall`): an app
//! that does not take a request body gets a 504, not a client held forever.
//! The request body it sends is `body`'s.

use std::io;
use std::net::SocketAddr;

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use super::UpstreamCtx;
use super::body::UpstreamBody;
use super::idle::Reusable;
use crate::error::ProxyError;
use crate::stall::Timed;

/// A sender for requests on one upstream connection.
pub(crate) type Sender = SendRequest<UpstreamBody>;

/// Opens a fresh HTTP/1.1 connection to `addr` and starts its driver.
pub(crate) async fn connect(ctx: &UpstreamCtx, addr: SocketAddr) -> Result<Sender, ProxyError> {
    let stream = crate::upstream::connect(addr, ctx.connect_timeout).await?;
    let (sender, conn) = http1::Builder::new()
        // By bytes, however the head arrives (hyper's read buffer limit alone
        // lets a larger head through when it comes in few reads).
        .max_header_size(super::MAX_RESPONSE_HEAD)
        .max_headers(super::max_lines(super::MAX_RESPONSE_HEAD))
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
    Ok(sender)
}

impl Reusable for Sender {
    fn is_reusable(&mut self) -> bool {
        self.is_ready()
    }
}
