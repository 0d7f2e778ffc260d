//! What the proxy's owner tells it about a service, and what a drain reports
//! back: the proxy's own vocabulary, so that it needs nothing of the daemon's
//! config or deploy types.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::policy::RequestPolicy;
use crate::pool::Probe;
use crate::slot::Slot;
use crate::tls::ServiceCert;

/// A service as routing sees it.
#[derive(Clone)]
pub struct Service {
    pub name: String,
    /// Host names it claims on the production listener; none makes it the
    /// default service (at most one).
    pub hosts: Vec<String>,
    /// Where its preview listener binds, if it has one (bound once, on the
    /// first `set_routes` that names it).
    pub preview: Option<SocketAddr>,
    /// How an instance that failed a connect is checked before it takes
    /// requests again.
    pub probe: Arc<dyn Probe>,
    /// Its certificate on the TLS listener (for its hosts, chosen by SNI);
    /// none: plain HTTP only. With one, its plain-HTTP requests get 308 to
    /// https when `ProxyOptions::tls_redirect` says so.
    pub tls: Option<ServiceCert>,
    /// Its body limit and error pages.
    pub policy: RequestPolicy,
    /// How the proxy speaks to its instances.
    pub protocol: UpstreamProtocol,
}

/// The protocol the proxy speaks to a service's instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 (the lean path, or hyper's for what it hands over).
    #[default]
    Http1,
    /// HTTP/2 with prior knowledge (gRPC): always hyper's path, streams
    /// multiplexed on a few connections per worker, trailers passed through.
    H2c,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("hosts", &self.hosts)
            .field("preview", &self.preview)
            .field("tls", &self.tls.is_some())
            .field("max_body", &self.policy.max_body)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// The instances of one slot, as the proxy sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub slot: Slot,
    pub version: String,
    pub addrs: Vec<SocketAddr>,
}

/// What a drain ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainReport {
    /// Requests (and upgraded connections) still in flight at the deadline.
    pub remaining: usize,
    /// True when it ended by the timeout rather than by reaching zero.
    pub timed_out: bool,
    /// How long it waited for in-flight requests (up to the deadline; the
    /// closing of upgraded connections after it is not counted).
    pub waited: Duration,
    /// Upgraded connections (websockets) still open at the deadline, which
    /// the drain then closed (a close frame 1001 "going away" to both sides
    /// of a websocket, the sockets of any other).
    pub upgraded_closed: usize,
}

/// Which listener a socket or a connection belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerName {
    Production,
    /// The preview listener of this service.
    Preview(String),
    /// The TLS listener (routes by SNI and Host, like production).
    Tls,
}
