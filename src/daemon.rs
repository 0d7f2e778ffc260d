//! `teal serve`: wires state, runtimes, the proxy, the deployer and the control API
//! together, and owns shutdown.
//!
//! Start order: lock the state dir → bring back live slots (health-gated) → bind the
//! proxy → install routes → remove leftovers (`reconcile_all`; after an upgrade,
//! once the old daemon is done) → open the control socket. So the proxy serves only once
//! the restored versions are healthy. Stop order: stop accepting (proxy, control) →
//! let in-flight requests and actions finish (bounded) → stop every instance that
//! is not live, and release the live ones: processes and containers keep serving
//! and the next `teal serve` adopts them ([`Daemon::shutdown`]), unless the caller
//! stops them too ([`Daemon::shutdown_stopping_instances`]).
//!
//! Under systemd with socket activation, the production, preview and admin
//! listeners are the sockets systemd holds ([`Given::systemd`]): nothing is
//! accepted on them until the routes are installed, and connections that
//! arrive while no daemon runs wait in their backlog.
//!
//! `teal serve --upgrade` starts from what the running daemon hands over
//! (`upgrade::Inheritance`: its listening sockets, admin listener and state
//! lock; with the nginx router, no sockets: nginx holds them and the
//! successor adopts the running nginx) and tells it to leave once serving; a
//! daemon that hands over leaves instead of stopping: its connections go to
//! the successor, its instances are released to it, nginx is left running,
//! and its control socket file is the successor's.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::acme::AcmeRouter;
use crate::api;
use crate::deploy::{self, DeployError, Deployer, LiveInstances, Runtimes};
use crate::router::nginx::NginxRouter;
use crate::router::{Router, RouterError};
use crate::runtime::InstanceRef;
use crate::runtime::docker::DockerRuntime;
use crate::runtime::process::ProcessRuntime;
use crate::spec::{AccessLogTarget, Config, RouterKind, Underscores};
use crate::state::{StateCell, StateError, Store};
use crate::systemd::{self, Activated};
use crate::upgrade::{Inheritance, Predecessor, UpgradeError};
use teal_proxy::{
    AccessLog, AccessLogError, AccessTarget, ListenerName, Listening, Proxy, ProxyOptions,
    UnderscoreHeaders,
};

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
    #[error("control socket {}: {error}", path.display())]
    Control {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("admin listener {addr}: {error}")]
    Admin {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error(transparent)]
    Upgrade(#[from] UpgradeError),
    #[error(
        "systemd passes listening sockets (a .socket unit), but the nginx router binds its own: remove the socket unit, or use the builtin router"
    )]
    ActivatedNginx,
    #[error(transparent)]
    AccessLog(#[from] AccessLogError),
}

/// What a starting daemon is given instead of binding it itself.
#[derive(Default)]
pub struct Given {
    /// What the running daemon handed over (`teal serve --upgrade`).
    pub upgrade: Option<Inheritance>,
    /// The listening sockets systemd holds for teal (socket activation).
    pub systemd: Activated,
}

/// A running daemon. Call [`Daemon::shutdown`] for a graceful stop (live
/// instances keep running) or [`Daemon::shutdown_stopping_instances`]. Dropped
/// without either, its tasks run on until the tokio runtime ends, and then the
/// process instances they supervise are killed (a test's daemon).
pub struct Daemon {
    deployer: Arc<Deployer>,
    /// The builtin proxy or nginx; closed at shutdown before instances stop.
    router: Arc<dyn Router>,
    /// Fires once to stop everything: proxy accept loops, the control API and
    /// health gates of deploys in progress.
    shutdown: CancellationToken,
    /// Control connections and the action tasks they started; waited on at shutdown.
    tracker: TaskTracker,
    control: PathBuf,
    /// The bound admin (`/metrics`) address, if configured.
    admin: Option<SocketAddr>,
    /// What a successor can take over; its `leave` fires when one did.
    predecessor: Arc<Predecessor>,
    /// Serves the connections a predecessor passes on (after an upgrade).
    inherited: Option<tokio::task::JoinHandle<()>>,
    /// The builtin proxy's access log: reopened on request (SIGUSR1, through
    /// the CLI), written out and ended after the proxy stopped.
    access_log: Option<Arc<AccessLog>>,
}

impl Daemon {
    /// Starts serving according to `config`; returns once routes are installed and
    /// the control socket accepts.
    pub async fn start(config: &Config) -> Result<Daemon, DaemonError> {
        Daemon::start_from(config, Given::default()).await
    }

    /// [`Daemon::start`], on what it is `given`: what a running daemon
    /// handed over (it leaves once this one serves), the sockets of systemd.
    pub async fn start_from(config: &Config, given: Given) -> Result<Daemon, DaemonError> {
        let Given {
            upgrade: mut inheritance,
            systemd: mut activated,
        } = given;
        if !activated.is_empty() && config.proxy.router == RouterKind::Nginx {
            return Err(DaemonError::ActivatedNginx);
        }
        let store = match inheritance.as_mut() {
            Some(inherited) => {
                let lock = inherited.lock.try_clone().map_err(|error| StateError::Io {
                    path: config.state_dir.join("lock"),
                    error,
                })?;
                Store::open_inherited(&config.state_dir, lock)?
            }
            None => Store::open(&config.state_dir)?,
        };
        let state = Arc::new(StateCell::open(store)?);
        let process = Arc::new(ProcessRuntime::open(&config.state_dir)?);
        let runtimes = Runtimes {
            process,
            docker: Arc::new(DockerRuntime::new()),
        };
        let shutdown = CancellationToken::new();

        let restored = deploy::restore_live(&runtimes, &state, &shutdown).await;
        // Should this start fail, the restored instances are let go of, not
        // stopped: they may be serving on their own, and the next start adopts them.
        let restored_instances: Vec<InstanceRef> = restored
            .iter()
            .flat_map(|r| r.running.instances.iter().cloned())
            .collect();
        let listening = match inheritance.as_mut() {
            Some(inherited) => Some(std::mem::take(&mut inherited.listeners)),
            None if !activated.is_empty() => {
                Some(activated_listeners(config, &state, &mut activated))
            }
            None => None,
        };
        let (router, proxy) = match bind_router(config, &shutdown, listening).await {
            Ok(bound) => bound,
            Err(e) => {
                release(&restored_instances).await;
                return Err(e);
            }
        };
        // ACME services get their certificates through a layer over the
        // router (either: both answer challenges and reload certificates).
        let (router, acme) = match &config.proxy.tls {
            Some(tls) => {
                let acme = Arc::new(AcmeRouter::new(
                    router,
                    tls.acme.clone(),
                    &config.state_dir,
                    shutdown.child_token(),
                ));
                (acme.clone() as Arc<dyn Router>, Some(acme))
            }
            None => (router, None),
        };
        let inheriting = inheritance.is_some();
        let parts = Parts {
            router: router.clone(),
            acme,
            proxy,
            runtimes,
            state,
            restored,
            shutdown: shutdown.clone(),
            inheritance,
            activated,
        };
        match Daemon::serve(config, parts).await {
            Ok(daemon) => Ok(daemon),
            Err(e) => {
                // The one cleanup path: by now the router is the only thing running.
                // A failed successor leaves the running daemon's nginx as it
                // is (it adopted that nginx; the running daemon still serves
                // through it).
                shutdown.cancel();
                if inheriting {
                    router.leave(CLOSE_GRACE).await;
                } else {
                    router.close(CLOSE_GRACE).await;
                }
                release(&restored_instances).await;
                Err(e)
            }
        }
    }

    /// The rest of [`Daemon::start`] once the router is up: the deployer, the
    /// leftovers, the control socket and the admin listener. On error the caller
    /// closes the router.
    async fn serve(config: &Config, parts: Parts) -> Result<Daemon, DaemonError> {
        let Parts {
            router,
            acme,
            proxy,
            runtimes,
            state,
            restored,
            shutdown,
            mut inheritance,
            mut activated,
        } = parts;
        let access_log = proxy.as_ref().and_then(|proxy| proxy.access_log().cloned());
        let deployer = Deployer::new(
            router.clone(),
            runtimes,
            state.clone(),
            restored,
            shutdown.clone(),
        )
        .await?;
        let deployer = Arc::new(deployer);

        // Leftovers of the previous daemon (an interrupted deploy's containers) go
        // now that production is served again, and before any action can start.
        // Not yet after an upgrade: the daemon handing over still supervises its
        // standby instances (it would bring back what is removed under it) and
        // stops them as it leaves; what it left is removed once it is done.
        if inheritance.is_none() {
            deployer.reconcile_all().await;
        }

        let control = config.proxy.control.clone();
        // A successor binds beside the running daemon's socket and moves its
        // own over it once it serves: until then the CLI still finds the old one.
        let bind_at = match inheritance {
            Some(_) => control.with_extension("next"),
            None => control.clone(),
        };
        let listener = api::server::bind(&bind_at).map_err(|error| DaemonError::Control {
            path: bind_at.clone(),
            error,
        })?;
        let tracker = TaskTracker::new();
        // Counters start where a predecessor's were.
        let carried = Arc::new(crate::metrics::Carried::default());
        if let Some(inherited) = inheritance.as_mut() {
            carried.replace(std::mem::take(&mut inherited.counters));
        }
        let (admin, admin_copy) = match config.proxy.admin {
            Some(addr) => {
                let inherited = match inheritance.as_mut() {
                    Some(inherited) => inherited.take_admin(addr),
                    None => activated.take_addr(addr).map(std::net::TcpListener::from),
                };
                let socket = match inherited {
                    Some(socket) => socket,
                    None => std::net::TcpListener::bind(addr)
                        .map_err(|error| DaemonError::Admin { addr, error })?,
                };
                let copy = socket.try_clone().ok().map(OwnedFd::from);
                let bound = crate::metrics::serve(
                    socket,
                    deployer.clone(),
                    carried.clone(),
                    shutdown.clone(),
                    &tracker,
                )
                .await
                .map_err(|error| DaemonError::Admin { addr, error })?;
                (Some(bound), copy)
            }
            None => (None, None),
        };
        let predecessor = Arc::new(Predecessor::new(
            proxy.clone(),
            admin_copy,
            state,
            deployer.clone(),
            carried.clone(),
        ));
        tracker.spawn(api::server::serve(
            listener,
            deployer.clone(),
            predecessor.clone(),
            shutdown.clone(),
            tracker.clone(),
        ));
        let unused = activated.addrs();
        if !unused.is_empty() {
            tracing::warn!(
                addrs = ?unused,
                "systemd passed sockets no listener of this config uses: they stay open, unserved (remove them from the .socket unit)"
            );
        }
        // systemd learns this daemon serves (a successor: that it is the
        // main process now) before the predecessor is told to leave.
        systemd::notify::ready(inheritance.is_some());
        let inherited = match inheritance {
            Some(inheritance) => {
                std::fs::rename(&bind_at, &control).map_err(|error| DaemonError::Control {
                    path: control.clone(),
                    error,
                })?;
                tracing::info!(from = %inheritance.from, "taking over");
                let reconcile = {
                    let deployer = deployer.clone();
                    async move { deployer.reconcile_all().await }
                };
                Some(inheritance.ready(proxy, carried, reconcile).await?)
            }
            None => {
                // On sockets from systemd, accepting starts now that the
                // routes are installed (a no-op on sockets bound here).
                if let Some(proxy) = &proxy {
                    proxy.start_accepting();
                }
                None
            }
        };
        // Certificates may be ordered now that the plain listener accepts.
        if let Some(acme) = &acme {
            acme.start();
        }
        tracing::info!(
            listen = ?router.listen_addrs(),
            control = %control.display(),
            "teal serve is ready"
        );

        Ok(Daemon {
            deployer,
            router,
            shutdown,
            tracker,
            control,
            admin,
            predecessor,
            inherited,
            access_log,
        })
    }

    /// Resolves when a successor daemon has taken over (`teal serve --upgrade`):
    /// then [`Daemon::leave`], not [`Daemon::shutdown`].
    pub async fn replaced(&self) {
        self.predecessor.leave.cancelled().await;
    }

    /// After a successor took over: the live instances are released to it at
    /// once and the others stop; connections still busy here finish (the
    /// rest moved), websockets get up to the longest `drain.timeout`, then
    /// `Done` goes to the successor (which then removes whatever is left).
    /// nginx is left running. The control socket file and the state lock are
    /// the successor's now: neither is touched.
    pub async fn leave(self) {
        tracing::info!("a successor took over: leaving");
        // Upgraded connections (websockets) stay until they close, for up to
        // the longest drain timeout of the services (what a switch gives them).
        let grace = self
            .predecessor
            .state
            .snapshot()
            .services
            .values()
            .map(|record| record.spec.drain.timeout)
            .max()
            .unwrap_or(CLOSE_GRACE);
        self.shutdown.cancel();
        self.tracker.close();
        // First of all, the live instances are the successor's alone (it
        // adopted and supervises them): this daemon lets go of them at once,
        // so an instance that dies now is restarted once, by the successor.
        // The rest (a standby kept for rollback) it did not adopt: they stop
        // here rather than run on unsupervised, before `Done` (no action runs
        // meanwhile: the hand-over holds their locks). Requests still in
        // flight here go to the live instances, which keep running.
        self.deployer
            .stop_all(deploy::STOP_GRACE, LiveInstances::Release)
            .await;
        // The builtin proxy closes (its sockets are the successor's); nginx is
        // left running, adopted by the successor.
        self.router.leave(grace).await;
        self.close_access_log().await;
        self.predecessor.finish().await;
        let _ = tokio::time::timeout(ACTION_GRACE, self.tracker.wait()).await;
        tracing::info!("left");
    }

    /// Reopens the access log file at its path (logrotate moved it away:
    /// `teal serve` calls this on SIGUSR1). Nothing without an access log.
    pub fn reopen_access_log(&self) {
        if let Some(log) = &self.access_log {
            log.reopen();
        }
    }

    /// Writes out the access log lines the stopped proxy handed over.
    async fn close_access_log(&self) {
        if let Some(log) = &self.access_log {
            log.close().await;
            let dropped = log.dropped_lines();
            if dropped > 0 {
                tracing::warn!(
                    dropped,
                    "access log lines dropped because the writer fell behind"
                );
            }
        }
    }

    /// Where `/metrics` is served, when `proxy.admin` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// Production listener address(es), as bound.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.router.listen_addrs()
    }

    pub fn control_path(&self) -> &Path {
        &self.control
    }

    pub fn deployer(&self) -> &Arc<Deployer> {
        &self.deployer
    }

    /// Graceful stop: no new connections or actions, in-flight requests finish,
    /// then instances that are not live stop and live ones are let go of: they
    /// keep serving on their own (processes and containers alike) and the next
    /// `teal serve` on this state dir adopts them. What SIGTERM does.
    pub async fn shutdown(self) {
        self.stop(LiveInstances::Release).await;
    }

    /// Like [`Daemon::shutdown`], but live instances are stopped too: nothing of
    /// this daemon keeps running (the demo, tests). State is kept, so the next
    /// start brings the live versions back, cold.
    pub async fn shutdown_stopping_instances(self) {
        self.stop(LiveInstances::Stop).await;
    }

    async fn stop(self, live: LiveInstances) {
        tracing::info!("stopping");
        systemd::notify::stopping();
        if let Some(inherited) = &self.inherited {
            inherited.abort();
        }
        self.shutdown.cancel();
        self.tracker.close();
        self.router.close(CLOSE_GRACE).await;
        self.close_access_log().await;
        if tokio::time::timeout(ACTION_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "actions still running after {ACTION_GRACE:?}; stopping instances anyway"
            );
        }
        self.deployer.stop_all(deploy::STOP_GRACE, live).await;
        let _ = std::fs::remove_file(&self.control);
        tracing::info!("stopped");
    }
}

/// `teal serve` in the foreground: start, serve until `shutdown` completes, stop
/// gracefully. The caller decides what ends it (the CLI passes SIGTERM/SIGINT),
/// as in mini-redis' `server::run`; the daemon knows nothing of signals.
/// `reopen` is notified when log files were moved away (the CLI: SIGUSR1).
pub async fn run(
    config: &Config,
    systemd: Activated,
    shutdown: impl Future,
    reopen: &Notify,
) -> Result<(), DaemonError> {
    let given = Given {
        upgrade: None,
        systemd,
    };
    serve(config, given, shutdown, reopen).await
}

/// `teal serve --upgrade`: takes over from the daemon running on the same
/// state directory, then serves as [`run`] does. If anything fails before this
/// daemon serves, the running one goes on as if nothing happened.
pub async fn upgrade(
    config: &Config,
    shutdown: impl Future,
    reopen: &Notify,
) -> Result<(), DaemonError> {
    let inheritance = crate::upgrade::successor::request(&config.proxy.control).await?;
    let given = Given {
        upgrade: Some(inheritance),
        systemd: Activated::default(),
    };
    serve(config, given, shutdown, reopen).await
}

async fn serve(
    config: &Config,
    given: Given,
    shutdown: impl Future,
    reopen: &Notify,
) -> Result<(), DaemonError> {
    let daemon = Daemon::start_from(config, given).await?;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break daemon.shutdown().await,
            () = daemon.replaced() => break daemon.leave().await,
            () = reopen.notified() => daemon.reopen_access_log(),
        }
    }
    Ok(())
}

async fn release(instances: &[InstanceRef]) {
    futures_util::future::join_all(instances.iter().map(|i| i.release(deploy::STOP_GRACE))).await;
}

/// What [`Daemon::start`] built before the router bound, handed to [`Daemon::serve`].
struct Parts {
    router: Arc<dyn Router>,
    /// The ACME layer of `router`, when the daemon has a TLS listener.
    acme: Option<Arc<AcmeRouter>>,
    /// The same router when it is the builtin proxy (a successor takes it over).
    proxy: Option<Arc<Proxy>>,
    runtimes: Runtimes,
    state: Arc<StateCell>,
    restored: Vec<deploy::Restored>,
    /// The daemon's one stop signal; the router already holds a child of it.
    shutdown: CancellationToken,
    /// What a predecessor handed over (`teal serve --upgrade`).
    inheritance: Option<Inheritance>,
    /// systemd's sockets the router did not take (the admin listener's).
    activated: Activated,
}

/// systemd's sockets for the production listener, the TLS listener and the
/// previews of the services in state, as the proxy takes over a predecessor's: one copy per
/// worker, so every worker accepts from the same queue.
fn activated_listeners(
    config: &Config,
    state: &StateCell,
    activated: &mut Activated,
) -> Vec<Listening> {
    let workers = config
        .proxy
        .workers
        .unwrap_or_else(|| ProxyOptions::default().workers)
        .max(1);
    let mut wanted = vec![(ListenerName::Production, config.proxy.listen)];
    if let Some(tls) = &config.proxy.tls {
        wanted.push((ListenerName::Tls, tls.listen));
    }
    for (name, record) in &state.snapshot().services {
        if let Some(addr) = record.spec.preview {
            wanted.push((ListenerName::Preview(name.clone()), addr));
        }
    }
    let mut listening = Vec::new();
    for (name, addr) in wanted {
        let Some(socket) = activated.take_addr(addr) else {
            continue;
        };
        let mut sockets = Vec::with_capacity(workers);
        for _ in 1..workers {
            match socket.try_clone() {
                Ok(copy) => sockets.push(copy),
                Err(error) => tracing::warn!(%error, %addr, "copying a socket from systemd"),
            }
        }
        sockets.push(socket);
        listening.push(Listening {
            name,
            addr,
            sockets,
        });
    }
    listening
}

/// The builtin proxy (on a predecessor's sockets, when `inherited`) or
/// nginx (kept as it runs when a predecessor or a killed daemon left it
/// running), bound and serving (no routes yet); the proxy also typed.
async fn bind_router(
    config: &Config,
    shutdown: &CancellationToken,
    inherited: Option<Vec<Listening>>,
) -> Result<(Arc<dyn Router>, Option<Arc<Proxy>>), DaemonError> {
    let inheriting = inherited.is_some();
    Ok(match config.proxy.router {
        RouterKind::Builtin => {
            let mut opts = ProxyOptions::default();
            if let Some(workers) = config.proxy.workers {
                opts.workers = workers;
            }
            if let Some(timeout) = config.proxy.upstream_idle_timeout {
                opts.upstream_idle_timeout = timeout;
            }
            if let Some(timeout) = config.proxy.response_timeout {
                opts.response_timeout = timeout;
            }
            if let Some(size) = config.proxy.body_buffer {
                opts.body_buffer = size;
            }
            if let Some(timeout) = config.proxy.body_timeout {
                opts.body_timeout = timeout;
            }
            if let Some(timeout) = config.proxy.send_timeout {
                opts.send_timeout = timeout;
            }
            if let Some(streams) = config.proxy.max_concurrent_streams {
                opts.max_concurrent_streams = streams;
            }
            if let Some(underscores) = config.proxy.underscores_in_headers {
                opts.underscores_in_headers = match underscores {
                    Underscores::Drop => UnderscoreHeaders::Drop,
                    Underscores::Pass => UnderscoreHeaders::Pass,
                    Underscores::Refuse => UnderscoreHeaders::Refuse,
                };
            }
            if let Some(tls) = &config.proxy.tls {
                opts.tls_listen = Some(tls.listen);
                opts.tls_redirect = tls.redirect;
            }
            if let Some(target) = &config.proxy.access_log {
                opts.access_log = Some(AccessLog::open(match target {
                    AccessLogTarget::Stdout => AccessTarget::Stdout,
                    AccessLogTarget::File(path) => AccessTarget::File(path.clone()),
                })?);
            }
            let token = shutdown.child_token();
            let listen = config.proxy.listen;
            let proxy = match inherited {
                Some(sockets) => Proxy::bind_inherited(listen, opts, token, sockets).await,
                None => Proxy::bind_with(listen, opts, token).await,
            }
            .map_err(RouterError::from)?;
            (proxy.clone(), Some(proxy))
        }
        RouterKind::Nginx => {
            let router = NginxRouter::start(
                &config.proxy,
                &config.state_dir,
                shutdown.child_token(),
                inheriting,
            )
            .await?;
            (router, None)
        }
    })
}
