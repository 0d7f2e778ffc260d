//! What became of one request, as far as its access log line needs it:
//! filled in by whichever part of a path answered it (forwarded, refused,
//! or answered by the proxy itself).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ProxyError;
use crate::pool::Pool;

/// Status, body bytes sent, and where the request went.
#[derive(Clone, Default)]
pub(crate) struct Outcome {
    pub(crate) status: u16,
    /// Body bytes sent to the client (the head not counted).
    pub(crate) response_bytes: u64,
    /// The pool that took it (its service, slot and version).
    pub(crate) pool: Option<Arc<Pool>>,
    pub(crate) instance: Option<SocketAddr>,
    /// From the request's start to the upstream's response head.
    pub(crate) upstream: Option<Duration>,
}

impl Outcome {
    /// The proxy's own answer for `error`, after `pool` (if any) was
    /// chosen: the service's error `page` when one was sent, else teal's text.
    pub(crate) fn local(
        error: &ProxyError,
        pool: Option<&Arc<Pool>>,
        page: Option<&[u8]>,
    ) -> Outcome {
        let body = page.map_or_else(|| error.body().len(), <[u8]>::len);
        Outcome {
            status: error.status().as_u16(),
            response_bytes: body as u64,
            pool: pool.cloned(),
            instance: None,
            upstream: None,
        }
    }
}
