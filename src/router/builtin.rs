//! The builtin router: [`Router`] on top of the builtin [`Proxy`], which switches
//! traffic by swapping pool pointers (see `proxy/`). This file only adapts.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;

use crate::proxy::Proxy;
use crate::router::{
    Backend, ClientConnections, DrainReport, ErrorBudget, Router, RouterError, TrafficStats, Watch,
};
use crate::slot::Slot;
use crate::spec::ServiceSpec;

#[async_trait]
impl Router for Proxy {
    async fn set_routes(
        &self,
        spec: &ServiceSpec,
        live: Option<Backend>,
        preview: Option<Backend>,
    ) -> Result<(), RouterError> {
        self.install(spec, live, preview).await
    }

    async fn drain(&self, service: &str, slot: Slot, timeout: Duration) -> DrainReport {
        self.drain_slot(service, slot, timeout).await
    }

    fn stats(&self, service: &str, slot: Slot) -> TrafficStats {
        self.slot_stats(service, slot)
    }

    fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.addrs()
    }

    fn preview_addr(&self, service: &str) -> Option<SocketAddr> {
        self.preview_listen_addr(service)
    }

    fn watch(
        &self,
        service: &str,
        slot: Slot,
        fallback: Option<Slot>,
        budget: ErrorBudget,
    ) -> Option<Watch> {
        self.watch_slot(service, slot, fallback, budget)
    }

    fn client_connections(&self) -> Option<ClientConnections> {
        Some(Proxy::client_connections(self))
    }

    async fn close(&self, grace: Duration) {
        self.wait_closed(grace).await;
    }
}
