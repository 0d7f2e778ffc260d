//! Finding a service's [`RequestPolicy`](crate::policy::RequestPolicy) for a
//! request: by listener and Host before a request with a body is read, or
//! when no pool answers (the proxy's own 503); a 502 or 504 finds it through
//! the request's pool instead. Also the owner's look at a service's pages.

use std::sync::Arc;

use bytes::Bytes;

use super::ListenerKind;
use crate::Proxy;
use crate::error::ProxyError;
use crate::policy::{ErrorPages, RequestPolicy};

impl Proxy {
    /// The policy of the service a request for `host` on `listener` goes to;
    /// None when no service matches. For requests with a body, and for the
    /// proxy's own 503.
    pub(crate) fn policy_for<'a>(
        &self,
        listener: &ListenerKind,
        host: impl FnOnce() -> Option<&'a str>,
    ) -> Option<Arc<RequestPolicy>> {
        match listener {
            ListenerKind::Production | ListenerKind::Tls => {
                let table = self.table.load();
                table.route_host(host).map(|s| s.policy.load_full())
            }
            ListenerKind::Preview(service) => Some(service.policy.load_full()),
        }
    }

    /// The error page of the service a request for `host` on `listener`
    /// goes to, for the proxy's own answer to `error` when no pool took the
    /// request (503, or 404 and the like, which have no page). Both HTTP
    /// paths ask here.
    pub(crate) fn page_for<'a>(
        &self,
        listener: &ListenerKind,
        error: &ProxyError,
        host: impl FnOnce() -> Option<&'a str>,
    ) -> Option<Bytes> {
        let status = error.status().as_u16();
        // A maintenance notice carries its own body (the 503 page already,
        // when the service has one and no message was given).
        if !ErrorPages::STATUSES.contains(&status) || matches!(error, ProxyError::Maintenance(_)) {
            return None;
        }
        let policy = self.policy_for(listener, host)?;
        policy.error_pages.get(status).cloned()
    }

    /// `service`'s page for the proxy's own answer with `status` (502, 503
    /// or 504), if it has one: what maintenance mode's 503 sends too.
    pub fn error_page(&self, service: &str, status: u16) -> Option<Bytes> {
        let table = self.table.load();
        let routes = table.service(service)?;
        routes.policy.load().error_pages.get(status).cloned()
    }
}
