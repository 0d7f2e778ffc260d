//! `teal serve`: wires state, runtimes, the proxy, the deployer and the control API
//! together, and owns shutdown.
//!
//! Start order: lock the state dir → bring back live slots (health-gated) → bind the
//! proxy → install routes → remove leftovers (`reconcile_all`) → open the control
//! socket. So the proxy serves only once
//! the restored versions are healthy. Stop order: stop accepting (proxy, control) →
//! let in-flight requests and actions finish (bounded) → stop every instance that
//! is not live, and release the live ones (processes stop; containers keep serving
//! and the next `teal serve` adopts them).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api;
use crate::deploy::{self, DeployError, Deployer, Runtimes};
use crate::proxy::Proxy;
use crate::router::{Router, RouterError};
use crate::runtime::docker::DockerRuntime;
use crate::runtime::process::ProcessRuntime;
use crate::spec::{Config, RouterKind};
use crate::state::{StateCell, StateError, Store};

/// How long a stopping daemon waits for open client connections to finish.
pub const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// How long a stopping daemon waits for actions in progress to clean up.
const ACTION_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error("control socket {}: {source}", path.display())]
    Control {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("router = \"nginx\" is not available in this build yet; use router = \"builtin\"")]
    RouterUnavailable,
}

/// A running daemon. Dropping it without `shutdown` leaves instances running
/// until the process exits; call `shutdown` for a graceful stop.
pub struct Daemon {
    deployer: Arc<Deployer>,
    proxy: Arc<Proxy>,
    /// Fires once to stop everything: proxy accept loops, the control API and
    /// health gates of deploys in progress.
    shutdown: CancellationToken,
    /// Control connections and the action tasks they started; waited on at shutdown.
    tracker: TaskTracker,
    control: PathBuf,
}

impl Daemon {
    /// Starts serving according to `config`; returns once routes are installed and
    /// the control socket accepts.
    pub async fn start(config: &Config) -> Result<Daemon, DaemonError> {
        if config.proxy.router == RouterKind::Nginx {
            return Err(DaemonError::RouterUnavailable);
        }
        let store = Store::open(&config.state_dir)?;
        let state = Arc::new(StateCell::open(store)?);
        let process = Arc::new(ProcessRuntime::new(config.state_dir.clone()));
        let runtimes = Runtimes {
            process,
            docker: Arc::new(DockerRuntime::new()),
        };
        let shutdown = CancellationToken::new();

        let restored = deploy::restore_live(&runtimes, &state, &shutdown).await;
        let proxy = Proxy::bind(config.proxy.listen, shutdown.child_token()).await?;
        let router: Arc<dyn Router> = proxy.clone();
        let deployer =
            Arc::new(Deployer::new(router, runtimes, state, restored, shutdown.clone()).await?);

        // Leftovers of the previous daemon (an interrupted deploy's containers) go
        // now that production is served again, and before any action can start.
        deployer.reconcile_all().await;

        let control = config.proxy.control.clone();
        let listener = api::server::bind(&control).map_err(|source| DaemonError::Control {
            path: control.clone(),
            source,
        })?;
        let tracker = TaskTracker::new();
        tracker.spawn(api::server::serve(
            listener,
            deployer.clone(),
            shutdown.clone(),
            tracker.clone(),
        ));
        tracing::info!(
            listen = ?proxy.listen_addrs(),
            control = %control.display(),
            "teal serve is ready"
        );

        Ok(Daemon {
            deployer,
            proxy,
            shutdown,
            tracker,
            control,
        })
    }

    /// Production listener address(es), as bound.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.proxy.listen_addrs()
    }

    pub fn control_path(&self) -> &Path {
        &self.control
    }

    pub fn deployer(&self) -> &Arc<Deployer> {
        &self.deployer
    }

    /// Graceful stop: no new connections or actions, in-flight requests finish,
    /// then every instance is stopped. State is kept for the next start.
    pub async fn shutdown(self) {
        tracing::info!("stopping");
        self.shutdown.cancel();
        self.tracker.close();
        self.proxy.wait_closed(CLOSE_GRACE).await;
        if tokio::time::timeout(ACTION_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "actions still running after {ACTION_GRACE:?}; stopping instances anyway"
            );
        }
        self.deployer.stop_all(deploy::STOP_GRACE).await;
        let _ = std::fs::remove_file(&self.control);
        tracing::info!("stopped");
    }
}

/// `teal serve` in the foreground: start, wait for SIGTERM/SIGINT, stop.
pub async fn run(config: &Config) -> Result<(), DaemonError> {
    let daemon = Daemon::start(config).await?;
    crate::cli::signals::terminated().await;
    daemon.shutdown().await;
    Ok(())
}
