//! hyper's upstream connections: a `SendRequest` per connection, its driver
//! task on the calling worker, and how an idle one tells it can be reused.

use std::io;
use std::net::SocketAddr;

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use super::body::UpstreamBody;
use crate::error::ProxyError;
use crate::upstream::UpstreamCtx;
use crate::upstream::idle::Reusable;

/// A sender for requests on one upstream connection.
pub(crate) type Sender = SendRequest<UpstreamBody>;

/// Opens a fresh HTTP/1.1 connection to `addr` and starts its driver.
pub(crate) async fn connect(ctx: &UpstreamCtx, addr: SocketAddr) -> Result<Sender, ProxyError> {
    let stream = crate::upstream::connect(addr, ctx.connect_timeout).await?;
    let (sender, conn) = http1::Builder::new()
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
