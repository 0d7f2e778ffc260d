//! Automatic certificates (`tls = "acme"`, RFC 8555 with HTTP-01): the
//! [`AcmeRouter`] wraps the daemon's router, so `deploy/` needs no change.
//!
//! Whenever routes are installed for a spec with `acme = true`, its `tls` is
//! filled with the stored certificate's files when they can be served now
//! (they load, cover the hosts, have not expired), else left `None` (the
//! service is served over plain HTTP, without redirect, until its
//! certificate arrives), and the service gets a task (`renew.rs`) that
//! orders (`order.rs`) when there is no usable certificate or a third of its
//! lifetime is left, installs the new one with `Router::reload_certificate`,
//! and backs off after a failure (`acme_retry`, doubling, at most a day).
//! A stored certificate that is valid and not due is never ordered again.
//!
//! Owns `<state_dir>/acme/` (`store.rs`: account, certificates) and the
//! status of each ACME service (`status.rs`). Does not listen: challenges
//! are answered by the router. One service's failure never touches
//! another's routes. Its tasks stop with the daemon's shutdown token and
//! are waited for in `close` / `leave`.

mod account;
mod order;
mod renew;
mod status;
mod store;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::router::{
    Backend, ClientConnections, DrainReport, ErrorBudget, Router, RouterError, TrafficStats, Watch,
};
use crate::slot::Slot;
use crate::spec::{AcmeSpec, ServiceSpec};
use crate::state::{Gates, StateError};
use crate::wire::CertificateStatus;

use status::Progress;

/// Why an order (or storing its result) failed. Each message carries its
/// cause.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The ACME server or the way to it (HTTP, TLS, a problem document).
    #[error("{0}")]
    Acme(#[from] instant_acme::Error),
    /// The server refused a name or the order.
    #[error("{0}")]
    Refused(String),
    #[error("cannot set up the ACME client: {0}")]
    Client(String),
    #[error("cannot make the key or CSR: {0}")]
    Csr(String),
    #[error("{0}")]
    State(#[from] StateError),
    #[error("{}: {message}", path.display())]
    Store { path: PathBuf, message: String },
    /// The router could not answer a challenge or install the certificate.
    #[error("{0}")]
    Router(String),
    #[error("no answer from the ACME server within {0:?}")]
    TimedOut(Duration),
    /// The daemon's `[proxy.tls]` has no `acme_email`.
    #[error("the daemon's teal.toml has no acme_email in [proxy.tls]: restart teal serve with it")]
    NoAccount,
}

/// The daemon's router, with certificates ordered for ACME services.
pub struct AcmeRouter {
    shared: Arc<Shared>,
}

/// What the router and the per-service tasks share.
struct Shared {
    inner: Arc<dyn Router>,
    /// None: the daemon's config has no `acme_email` (orders fail, said so).
    settings: Option<AcmeSpec>,
    store: store::Store,
    /// Serialises "fill `tls` and install routes" with "store and install a
    /// new certificate", so a deploy never installs a spec whose `tls` was
    /// read before a certificate it has not seen yet.
    install: tokio::sync::Mutex<()>,
    /// The account, opened at the first order and kept.
    account: tokio::sync::Mutex<Option<instant_acme::Account>>,
    /// ACME services by name. Locked briefly, never across an await.
    services: Mutex<BTreeMap<String, Entry>>,
    /// Fired by the daemon's shutdown: tasks end.
    shutdown: CancellationToken,
    /// Fired once the daemon serves (`AcmeRouter::start`): no order starts
    /// before its plain listener accepts.
    serving: CancellationToken,
    tasks: TaskTracker,
}

/// One ACME service.
struct Entry {
    /// Its latest spec (as routes were last installed, `tls` as filled).
    spec: ServiceSpec,
    progress: Progress,
    /// Wakes its task when its hosts changed.
    wake: Arc<Notify>,
}

impl AcmeRouter {
    /// Wraps `inner`. `settings` are the daemon's `acme_*` keys; tasks stop
    /// on `shutdown`.
    pub fn new(
        inner: Arc<dyn Router>,
        settings: Option<AcmeSpec>,
        state_dir: &std::path::Path,
        shutdown: CancellationToken,
    ) -> AcmeRouter {
        AcmeRouter {
            shared: Arc::new(Shared {
                inner,
                settings,
                store: store::Store::new(state_dir),
                install: tokio::sync::Mutex::new(()),
                account: tokio::sync::Mutex::new(None),
                services: Mutex::new(BTreeMap::new()),
                shutdown,
                serving: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// The daemon serves: orders may start.
    pub fn start(&self) {
        self.shared.serving.cancel();
    }

    /// `spec` with `tls` filled from the stored certificate when it can be
    /// served now; registers the service (and starts its task) when new.
    fn prepare(&self, spec: &ServiceSpec) -> ServiceSpec {
        let mut spec = spec.clone();
        let files = self.shared.store.files(&spec.name);
        let served = match status::usable(&files, &spec.hosts) {
            Ok(info) => {
                spec.tls = Some(files);
                Some(info)
            }
            Err(why) => {
                tracing::debug!(service = %spec.name, %why, "no certificate to serve");
                spec.tls = None;
                None
            }
        };
        let mut services = self.shared.lock();
        match services.get_mut(&spec.name) {
            Some(entry) => {
                if entry.spec.hosts != spec.hosts {
                    entry.wake.notify_one();
                }
                entry.spec = spec.clone();
                entry.progress.served = served;
            }
            None => {
                let wake = Arc::new(Notify::new());
                services.insert(
                    spec.name.clone(),
                    Entry {
                        spec: spec.clone(),
                        progress: Progress {
                            served,
                            ..Progress::default()
                        },
                        wake: Arc::clone(&wake),
                    },
                );
                let shared = Arc::clone(&self.shared);
                let name = spec.name.clone();
                self.shared
                    .tasks
                    .spawn(async move { renew::run(shared, name, wake).await });
            }
        }
        spec
    }

    async fn stop_tasks(&self, grace: Duration) {
        self.shared.tasks.close();
        if tokio::time::timeout(grace, self.shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("ACME tasks still running after {grace:?}");
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.services.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Router for AcmeRouter {
    async fn set_routes(
        &self,
        spec: &ServiceSpec,
        live: Option<Backend>,
        preview: Option<Backend>,
    ) -> Result<(), RouterError> {
        if !spec.acme {
            // No longer an ACME service (or never was): its task ends.
            if let Some(gone) = self.shared.lock().remove(&spec.name) {
                gone.wake.notify_one();
            }
            return self.shared.inner.set_routes(spec, live, preview).await;
        }
        let _install = self.shared.install.lock().await;
        let spec = self.prepare(spec);
        self.shared.inner.set_routes(&spec, live, preview).await
    }

    async fn restore_routes(
        &self,
        services: &[(&ServiceSpec, Option<Backend>)],
    ) -> Result<(), RouterError> {
        let _install = self.shared.install.lock().await;
        let prepared: Vec<ServiceSpec> = services
            .iter()
            .map(|(spec, _)| match spec.acme {
                true => self.prepare(spec),
                false => (*spec).clone(),
            })
            .collect();
        let pairs: Vec<(&ServiceSpec, Option<Backend>)> = prepared
            .iter()
            .zip(services)
            .map(|(spec, (_, live))| (spec, live.clone()))
            .collect();
        self.shared.inner.restore_routes(&pairs).await
    }

    async fn drain(&self, service: &str, slot: Slot, timeout: Duration) -> DrainReport {
        self.shared.inner.drain(service, slot, timeout).await
    }

    fn stats(&self, service: &str, slot: Slot) -> TrafficStats {
        self.shared.inner.stats(service, slot)
    }

    fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.shared.inner.listen_addrs()
    }

    fn tls_addr(&self) -> Option<SocketAddr> {
        self.shared.inner.tls_addr()
    }

    fn preview_addr(&self, service: &str) -> Option<SocketAddr> {
        self.shared.inner.preview_addr(service)
    }

    fn watch(
        &self,
        service: &str,
        slot: Slot,
        fallback: Option<Slot>,
        budget: ErrorBudget,
    ) -> Option<Watch> {
        self.shared.inner.watch(service, slot, fallback, budget)
    }

    fn client_connections(&self) -> Option<ClientConnections> {
        self.shared.inner.client_connections()
    }

    async fn set_challenge(
        &self,
        token: &str,
        key_authorization: Option<&str>,
    ) -> Result<(), RouterError> {
        self.shared
            .inner
            .set_challenge(token, key_authorization)
            .await
    }

    async fn reload_certificate(&self, spec: &ServiceSpec) -> Result<(), RouterError> {
        self.shared.inner.reload_certificate(spec).await
    }

    async fn set_gate(&self, spec: &ServiceSpec, gates: &Gates) -> Result<(), RouterError> {
        self.shared.inner.set_gate(spec, gates).await
    }

    fn certificates(&self) -> Vec<CertificateStatus> {
        self.shared
            .lock()
            .iter()
            .map(|(name, entry)| entry.progress.view(name, &entry.spec.hosts))
            .collect()
    }

    async fn close(&self, grace: Duration) {
        self.stop_tasks(grace).await;
        self.shared.inner.close(grace).await;
    }

    async fn leave(&self, grace: Duration) {
        self.stop_tasks(grace).await;
        self.shared.inner.leave(grace).await;
    }
}
