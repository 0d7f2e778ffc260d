//! The nginx router (`[proxy] router = "nginx"`): [`Router`] implemented by
//! generating nginx's config and reloading it, the classic two-upstream setup driven by teal.
//!
//! One upstream per slot, a production server (Host routing by `server_name`)
//! pointing at the live slot, a preview server per service pointing at the
//! standby or staged slot. Map of the files:
//!
//! - `routes`: the route table and the checks on every name that reaches the config;
//! - `render`: route table → config text (pure), `render/tls.rs` its HTTPS side;
//! - `challenge`: ACME HTTP-01 challenge files nginx serves on the plain listener;
//!   `certs`: which services' certificate files nginx can load now;
//! - `apply`: the safe switch (write beside, `nginx -t`, rename, reload, confirm);
//! - `target`: managed or system nginx behind one enum; `managed`, `system`: each mode;
//! - `binary`: the nginx executable (finding it, its version, running it);
//!   `log_tail`: what nginx wrote to a log since an offset;
//! - `procs`: worker generations as `/proc` shows them; `workers`: who the
//!   managed nginx's workers run as and where they write temp files.
//!
//! This module does not start instances, and it does not count requests: nginx
//! serves them, so [`Router::stats`] reports nothing.

mod apply;
mod binary;
mod certs;
mod challenge;
mod log_tail;
mod managed;
mod procs;
pub mod render;
pub mod routes;
mod system;
mod target;
mod workers;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::router::{Backend, DrainReport, Router, RouterError, TrafficStats};
use crate::slot::Slot;
use crate::spec::{NginxSpec, ProxySpec, ServiceSpec};
use crate::state::Gates;
use binary::Binary;
pub use binary::find_binary;
use challenge::Challenges;
use managed::Managed;
use procs::Pid;
use render::{Settings, TlsSettings};
use routes::{MaintenanceRoute, RouteSet};
use system::System;
use target::Target;

/// How often the managed master is checked, and restarted if it died.
const SUPERVISE_EVERY: Duration = Duration::from_secs(1);
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// The nginx router. Implements [`Router`].
pub struct NginxRouter {
    settings: Settings,
    /// Serialises changes, so two config writes and reloads never interleave; also
    /// owns the master. Requests never take it: nginx serves them.
    state: tokio::sync::Mutex<State>,
    /// The route table in force, for the synchronous readers (addresses).
    snapshot: ArcSwap<RouteSet>,
    /// Fired when the daemon stops: the supervisor gives up restarting nginx.
    shutdown: CancellationToken,
    /// ACME HTTP-01 challenge files: written without the state lock (no
    /// reload: nginx reads them per request).
    challenges: Challenges,
}

struct State {
    target: Target,
    routes: RouteSet,
    /// The config text nginx runs with (also what is on disk).
    applied: Option<String>,
    /// Workers of generations a reload retired and that may still run:
    /// `drain` waits for them.
    retiring: BTreeSet<Pid>,
    /// Set by `close`: no more changes, no more restarts.
    closed: bool,
    /// Maintenance by service (`set_gate`), kept apart from the routes so a
    /// gate set before a service's routes (at start) applies to them.
    maintenance: BTreeMap<String, Vec<MaintenanceRoute>>,
}

impl NginxRouter {
    /// Finds nginx, writes the initial config (every request answered 503 until
    /// routes are set) and starts (managed) or reloads (system) nginx.
    ///
    /// Unless nginx already runs teal's routes from before: a managed master
    /// left running (adopted), or, when `inherited` (a successor of `teal serve
    /// --upgrade`), the system nginx. Then nothing changes now: nginx goes on
    /// serving what it served, and [`Router::restore_routes`] reloads it only if
    /// the restored routes differ.
    pub async fn start(
        proxy: &ProxySpec,
        state_dir: &Path,
        shutdown: CancellationToken,
        inherited: bool,
    ) -> Result<Arc<NginxRouter>, RouterError> {
        let spec = &proxy.nginx;
        if proxy.listen.port() == 0 {
            return Err(RouterError::Invalid(format!(
                "proxy.listen {} uses port 0, which router = \"nginx\" does not support: nginx cannot tell teal which port it picked",
                proxy.listen
            )));
        }
        if let Some(tls) = proxy.tls.as_ref().filter(|tls| tls.listen.port() == 0) {
            return Err(RouterError::Invalid(format!(
                "proxy.tls.listen {} uses port 0, which router = \"nginx\" does not support: nginx cannot tell teal which port it picked",
                tls.listen
            )));
        }
        let dir = state_dir.join("nginx");
        for path in [Some(&dir), spec.include.as_ref(), spec.conf_dir.as_ref()]
            .into_iter()
            .flatten()
        {
            check_path(path)
                .map_err(|reason| RouterError::Invalid(format!("{}: {reason}", path.display())))?;
        }
        let binary = Binary::locate(&spec.binary).await?;
        if let Some(tls) = &proxy.tls
            && !binary.rejects_handshakes()
        {
            return Err(RouterError::Invalid(format!(
                "[proxy.tls] listen {} with the nginx router needs nginx 1.19.4 or later (ssl_reject_handshake, so that a name no service claims gets no certificate); {} is {}",
                tls.listen,
                binary.path.display(),
                binary
                    .version
                    .map(|(a, b, c)| format!("{a}.{b}.{c}"))
                    .unwrap_or_else(|| "of an unknown version".into())
            )));
        }
        let http2_directive = binary.has_http2_directive();
        let mut target = match spec.conf_dir {
            None => Target::Managed(Managed::new(binary, &dir, spec.workers)?),
            Some(_) => Target::System(System::new(binary, spec, &dir)?),
        };
        let previous = std::fs::read_to_string(target.live_file()).ok();
        let taken_over = previous.is_some()
            && match &mut target {
                Target::Managed(managed) => managed.running().is_some(),
                Target::System(system) => inherited && system.master().is_some(),
            };
        // Workers of another user: a system nginx's, or a root teal's managed ones.
        let others = spec.is_system() || nix::unistd::geteuid().is_root();
        let challenges = Challenges::prepare(&dir, others)?;
        check_path(challenges.webroot()).map_err(|reason| {
            RouterError::Invalid(format!("{}: {reason}", challenges.webroot().display()))
        })?;
        let settings = Settings {
            listen: proxy.listen,
            keepalive_timeout: spec.keepalive_timeout,
            include: spec.include.clone(),
            tls: proxy.tls.as_ref().map(|tls| TlsSettings {
                listen: tls.listen,
                redirect: tls.redirect,
            }),
            webroot: challenges.webroot().to_owned(),
            http2_directive,
        };
        let router = Arc::new(NginxRouter {
            settings,
            state: tokio::sync::Mutex::new(State {
                target,
                routes: RouteSet::default(),
                applied: previous,
                retiring: BTreeSet::new(),
                closed: false,
                maintenance: BTreeMap::new(),
            }),
            snapshot: ArcSwap::from_pointee(RouteSet::default()),
            shutdown,
            challenges,
        });
        if taken_over {
            tracing::info!("nginx already serves teal's routes: kept running as it is");
        } else {
            let mut state = router.state.lock().await;
            router
                .install(&mut state, RouteSet::default(), true)
                .await?;
        }
        if spec.conf_dir.is_none() {
            tokio::spawn(supervise(Arc::downgrade(&router)));
        }
        tracing::info!(
            listen = %proxy.listen,
            mode = if spec.is_system() { "system" } else { "managed" },
            "nginx router ready"
        );
        Ok(router)
    }

    /// Renders `routes`, applies them when the text changed (or `force`), and
    /// makes them the table in force. Called with the state lock held.
    async fn install(
        &self,
        state: &mut State,
        routes: RouteSet,
        force: bool,
    ) -> Result<(), RouterError> {
        if state.closed {
            return Err(RouterError::Other("the nginx router is stopping".into()));
        }
        // A service whose certificate files went bad must not make nginx
        // refuse everyone's config: it is rendered without its TLS server.
        let text = state
            .target
            .render(&certs::servable(&routes), &self.settings);
        if force || state.applied.as_deref() != Some(text.as_str()) {
            let previous = state.applied.take();
            let result = apply::apply(&mut state.target, &text, previous.as_deref()).await;
            match result {
                Ok(reloaded) => {
                    tracing::info!(
                        workers = ?reloaded.workers,
                        retired = ?reloaded.retired,
                        "nginx reloaded"
                    );
                    state.retiring.extend(reloaded.retired);
                    state.applied = Some(text);
                }
                Err(e) => {
                    state.applied = previous;
                    return Err(e);
                }
            }
        }
        self.snapshot.store(Arc::new(routes.clone()));
        state.routes = routes;
        Ok(())
    }
}

#[async_trait]
impl Router for NginxRouter {
    async fn set_routes(
        &self,
        spec: &ServiceSpec,
        live: Option<Backend>,
        preview: Option<Backend>,
    ) -> Result<(), RouterError> {
        // Its own certificate must load: the deploy fails otherwise.
        certs::check(spec)?;
        let mut state = self.state.lock().await;
        let routes = state
            .routes
            .with(spec, live, preview, &self.settings)?
            .gated(&state.maintenance);
        if state.routes == routes {
            return Ok(());
        }
        self.install(&mut state, routes, false).await?;
        tracing::info!(service = %spec.name, "nginx routes installed");
        Ok(())
    }

    /// Every service's routes in one config: at most one reload, none when
    /// nginx already runs that text (a master adopted across an upgrade).
    async fn restore_routes(
        &self,
        services: &[(&ServiceSpec, Option<Backend>)],
    ) -> Result<(), RouterError> {
        let mut state = self.state.lock().await;
        let mut routes = state.routes.clone();
        for (spec, live) in services {
            routes = routes.with(spec, live.clone(), None, &self.settings)?;
        }
        let routes = routes.gated(&state.maintenance);
        self.install(&mut state, routes, false).await?;
        tracing::info!(services = services.len(), "nginx routes restored");
        Ok(())
    }

    /// Waits for the workers that earlier reloads retired: they hold whatever
    /// requests (and websockets) were still on the old routes. nginx ends them
    /// at `worker_shutdown_timeout`, the longest `drain.timeout`. `remaining` counts
    /// old worker processes, not requests.
    async fn drain(&self, _service: &str, _slot: Slot, timeout: Duration) -> DrainReport {
        let started = Instant::now();
        let (master, retiring) = {
            let mut state = self.state.lock().await;
            let master = state.target.master();
            (master, state.retiring.clone())
        };
        let still = |master: Option<Pid>| -> BTreeSet<Pid> {
            let Some(master) = master else {
                return BTreeSet::new();
            };
            let children = procs::children(master);
            retiring.intersection(&children).copied().collect()
        };
        let mut remaining = still(master);
        while !remaining.is_empty() && started.elapsed() < timeout {
            tokio::time::sleep(DRAIN_POLL.min(timeout.saturating_sub(started.elapsed()))).await;
            remaining = still(master);
        }
        {
            let mut state = self.state.lock().await;
            let gone: Vec<Pid> = retiring.difference(&remaining).copied().collect();
            for pid in gone {
                state.retiring.remove(&pid);
            }
        }
        DrainReport {
            remaining: remaining.len(),
            timed_out: !remaining.is_empty(),
            waited: started.elapsed(),
            // nginx's old workers close theirs at worker_shutdown_timeout.
            upgraded_closed: 0,
        }
    }

    /// Maintenance becomes `return 503` in the service's production server
    /// (one reload); a pause is refused: nginx cannot hold requests.
    async fn set_gate(&self, spec: &ServiceSpec, gates: &Gates) -> Result<(), RouterError> {
        if !gates.pause.is_empty() {
            return Err(RouterError::Invalid(
                "pause needs the builtin router: nginx cannot hold requests until a resume (maintenance works with both)".into(),
            ));
        }
        let mut wanted = Vec::new();
        for m in &gates.maintenance {
            let host = m.host.as_deref().map(routes::check_host).transpose()?;
            let text = match &m.message {
                Some(message) => routes::maintenance_text(message)?,
                None => format!(
                    "{} is down for maintenance; please try again later\\n",
                    spec.name
                ),
            };
            wanted.push(MaintenanceRoute {
                host,
                text,
                retry_after: m.retry_after,
            });
        }
        let mut state = self.state.lock().await;
        let mut maintenance = state.maintenance.clone();
        if wanted.is_empty() {
            maintenance.remove(&spec.name);
        } else {
            maintenance.insert(spec.name.clone(), wanted);
        }
        let routes = state.routes.clone().gated(&maintenance);
        if routes != state.routes {
            self.install(&mut state, routes, false).await?;
        }
        state.maintenance = maintenance;
        tracing::info!(service = %spec.name, "nginx maintenance set");
        Ok(())
    }

    /// A file nginx serves from the challenge webroot: no reload.
    async fn set_challenge(
        &self,
        token: &str,
        key_authorization: Option<&str>,
    ) -> Result<(), RouterError> {
        self.challenges.set(token, key_authorization)?;
        tracing::debug!(
            token,
            set = key_authorization.is_some(),
            "ACME challenge file changed"
        );
        Ok(())
    }

    /// nginx reads certificate files when it loads its config: the config is
    /// rendered again (the paths may be new: a first certificate), checked
    /// with `nginx -t` (files that do not load are refused before, and change
    /// nothing) and
    /// reloaded even when its text is the same. New workers serve the new
    /// certificate; the old ones finish their connections with the old one.
    /// A service with no routes yet: nothing to do (its next `set_routes`
    /// brings the files).
    async fn reload_certificate(&self, spec: &ServiceSpec) -> Result<(), RouterError> {
        certs::check(spec)?;
        let mut state = self.state.lock().await;
        let Some(routes) = state.routes.with_certificate(spec, &self.settings)? else {
            tracing::debug!(service = %spec.name, "no routes yet: its certificate comes with them");
            return Ok(());
        };
        self.install(&mut state, routes, true).await?;
        tracing::info!(service = %spec.name, "nginx reloaded for a new certificate");
        Ok(())
    }

    fn stats(&self, _service: &str, _slot: Slot) -> TrafficStats {
        TrafficStats::default()
    }

    fn tls_addr(&self) -> Option<SocketAddr> {
        self.settings.tls.as_ref().map(|tls| tls.listen)
    }

    fn listen_addrs(&self) -> Vec<SocketAddr> {
        let mut addrs = vec![self.settings.listen];
        addrs.extend(
            self.snapshot
                .load()
                .services
                .values()
                .filter_map(|s| s.preview),
        );
        addrs
    }

    fn preview_addr(&self, service: &str) -> Option<SocketAddr> {
        self.snapshot.load().services.get(service)?.preview
    }

    /// Managed: stops the master gracefully (in-flight requests finish within
    /// `grace`). System: empties `teal.conf` and reloads (confirmed), so the
    /// system nginx stops serving teal's listeners before teal stops the instances.
    async fn close(&self, grace: Duration) {
        let mut state = self.state.lock().await;
        if state.closed {
            return;
        }
        state.closed = true;
        let previous = state.applied.take();
        match &mut state.target {
            Target::Managed(managed) => managed.stop(grace).await,
            Target::System(_) => {
                let result = apply::apply(&mut state.target, STOPPED, previous.as_deref()).await;
                if let Err(e) = result {
                    tracing::error!("could not take teal's routes out of the system nginx: {e}");
                }
            }
        }
        self.challenges.forget();
    }

    /// A successor daemon took over: nginx and its config stay exactly as they
    /// are. Managed: the master is let go of, not stopped (the successor
    /// adopted it through its pid file); system: `teal.conf` is not emptied.
    /// No more changes or restarts from this daemon.
    async fn leave(&self, _grace: Duration) {
        let mut state = self.state.lock().await;
        if state.closed {
            return;
        }
        state.closed = true;
        if let Target::Managed(managed) = &mut state.target {
            managed.release();
        }
    }
}

/// `teal.conf` while teal is stopped (system mode): no servers, no upstreams.
const STOPPED: &str =
    "# teal serve is stopped: it routes nothing. teal rewrites this file when it starts.\n";

/// Restarts the managed master if it dies while teal runs (every second), until
/// the daemon stops or the router is dropped.
async fn supervise(router: std::sync::Weak<NginxRouter>) {
    loop {
        tokio::time::sleep(SUPERVISE_EVERY).await;
        let Some(router) = router.upgrade() else {
            return;
        };
        if router.shutdown.is_cancelled() {
            return;
        }
        let mut state = router.state.lock().await;
        if state.closed {
            return;
        }
        if state.target.master().is_some() {
            continue;
        }
        tracing::error!("the managed nginx is not running; starting it again");
        match state.target.start().await {
            Ok(pid) => tracing::info!(pid, "managed nginx restarted"),
            Err(e) => tracing::error!("could not restart the managed nginx: {e}"),
        }
    }
}

/// Why `path` cannot appear (double-quoted) in an nginx config, if it cannot.
pub fn check_path(path: &Path) -> Result<(), String> {
    let Some(text) = path.to_str() else {
        return Err("the path is not valid UTF-8, which nginx configs need".into());
    };
    if text
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        return Err(format!(
            "{text:?} contains a quote, a backslash or a control character, which cannot be written into an nginx config"
        ));
    }
    Ok(())
}

/// `path` double-quoted for an nginx config (checked by [`check_path`]).
pub(crate) fn quote(path: &Path) -> String {
    format!("\"{}\"", path.display())
}

/// The nginx binary `[proxy.nginx]` names, if it can be found (for tests and
/// diagnostics).
pub fn locate(spec: &NginxSpec) -> Option<PathBuf> {
    find_binary(&spec.binary)
}
