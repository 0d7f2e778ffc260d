//! The builtin reverse proxy: listeners, Host routing, forwarding, upstream
//! connection reuse, the atomic pool switch and in-flight tracking.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::router::RouterError;

/// The builtin proxy. Implements [`crate::router::Router`].
pub struct Proxy {}

impl Proxy {
    /// Binds the production listener and starts serving (503 for everything until
    /// routes are set). Stops accepting when `shutdown` fires.
    pub async fn bind(
        listen: SocketAddr,
        shutdown: CancellationToken,
    ) -> Result<Arc<Proxy>, RouterError> {
        let _ = (listen, shutdown);
        todo!("Proxy::bind")
    }

    /// Waits until every connection the proxy served has closed (after `shutdown`
    /// fired), or `grace` has passed; then returns.
    pub async fn wait_closed(&self, grace: std::time::Duration) {
        let _ = grace;
        todo!("Proxy::wait_closed")
    }
}
