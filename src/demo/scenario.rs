//! The blue-green walk-through, end to end on this machine, under continuous load:
//! deploy 1.0.0 → a broken 1.1.0 fails while 1.0.0 keeps serving → 1.1.1 goes live
//! (and passes its verify window) → roll back to 1.0.0 → a flaky 1.2.0 that passes
//! its health check but fails real traffic goes live, is caught by the verify
//! window and switched back automatically. The steps before the last must drop no
//! request; the last one's failures are counted apart, and must be exactly the ones
//! teal counted on the bad slot and within its error budget. A real daemon, real app processes, real sockets; the only
//! thing that differs from production use is the temporary state dir. With
//! `--router nginx` the same story runs through a managed nginx (which must be
//! installed) on free loopback ports.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::api::client::Client;
use crate::daemon::Daemon;
use crate::load::{Load, LoadReport, LoadSpec};
use crate::spec::{
    Config, DrainSpec, HealthSpec, Inconclusive, NginxSpec, ProxySpec, RouterKind, RuntimeSpec,
    ServiceSpec, VerifySpec,
};
use crate::wire::{ActionRequest, DeployRequest, Event, Outcome};

/// The demo's service name.
pub const SERVICE: &str = "uptimer";

/// What the demo did, for the summary table and `--json`.
#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub steps: Vec<StepReport>,
    pub load: LoadReport,
    /// The automatic rollback step (builtin router only).
    pub auto_rollback: Option<AutoRollback>,
    pub production: SocketAddr,
    pub router: RouterKind,
}

#[derive(Debug, Serialize)]
pub struct StepReport {
    pub action: String,
    pub outcome: String,
    pub expected: String,
    pub ok: bool,
    pub seconds: f64,
}

/// What the flaky version did to real traffic before it was switched back.
#[derive(Debug, Serialize)]
pub struct AutoRollback {
    pub version: String,
    /// Requests that reached it (teal's count over the window).
    pub requests: u64,
    /// Of those, the ones that failed, as teal counted them.
    pub errors_counted: u64,
    /// Failed requests the load client saw during the step.
    pub affected: u64,
    /// The most the error budget allows: what it tolerates, the request that
    /// crossed it, and one per client connection already in flight.
    pub bound: u64,
    /// Why teal switched back.
    pub reason: String,
}

impl AutoRollback {
    pub fn ok(&self) -> bool {
        self.affected == self.errors_counted && self.affected <= self.bound
    }
}

impl DemoReport {
    /// Failed requests outside the automatic rollback step.
    pub fn failed_elsewhere(&self) -> u64 {
        let step = self.auto_rollback.as_ref().map_or(0, |a| a.affected);
        self.load.failed().saturating_sub(step)
    }

    /// True when every step went as the story says, no request failed outside
    /// the automatic rollback step, and that step's failures are accounted for.
    pub fn passed(&self) -> bool {
        self.failed_elsewhere() == 0
            && self.steps.iter().all(|s| s.ok)
            && self.auto_rollback.as_ref().is_none_or(AutoRollback::ok)
    }
}

/// The demo's verify window: short, so the story stays short.
const VERIFY: VerifySpec = VerifySpec {
    window: Duration::from_secs(2),
    max_error_rate: 0.05,
    max_p99: None,
    min_requests: 20,
    on_inconclusive: Inconclusive::Promote,
};

/// The flaky version: healthy on /healthz, 500 to a quarter of real requests.
const FLAKY: &str = "flaky-1.2.0";

/// Load client connections: at most this many requests are in flight.
const CONNECTIONS: u64 = 10;

/// The demo's config: two instances per slot, a preview listener, the demo app as
/// the command, everything on loopback port 0 inside `dir` (free ports picked
/// now for nginx, which cannot report a port it picked).
pub fn config(dir: &Path, teal_exe: &Path, router: RouterKind) -> Config {
    let port = |router| match router {
        RouterKind::Builtin => SocketAddr::from(([127, 0, 0, 1], 0)),
        RouterKind::Nginx => free_port(),
    };
    let service = ServiceSpec {
        name: SERVICE.into(),
        runtime: RuntimeSpec::Process {
            command: vec![
                teal_exe.display().to_string(),
                "demo-app".into(),
                "--port".into(),
                "{port}".into(),
                "--app-version".into(),
                "{version}".into(),
                "--boot-delay".into(),
                "500ms".into(),
            ],
        },
        instances: 2,
        version: Some("1.0.0".into()),
        hosts: Vec::new(),
        preview: Some(port(router)),
        env: BTreeMap::new(),
        secrets: Default::default(),
        workdir: dir.to_path_buf(),
        health: HealthSpec {
            path: crate::demo::app::HEALTHZ.into(),
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(5),
            grpc: None,
            h2c: false,
        },
        drain: DrainSpec {
            timeout: Duration::from_secs(10),
            keep_previous: true,
        },
        hooks: Default::default(),
        // The nginx router cannot watch traffic (see README): no window there.
        verify: (router == RouterKind::Builtin).then_some(VERIFY),
        tls: None,
        acme: false,
        policy: Default::default(),
        protocol: Default::default(),
    };
    Config {
        path: dir.join("teal.toml"),
        state_dir: dir.join("state"),
        proxy: ProxySpec {
            listen: port(router),
            router,
            control: dir.join("state").join("teal.sock"),
            admin: None,
            workers: None,
            upstream_idle_timeout: None,
            response_timeout: None,
            body_buffer: None,
            body_timeout: None,
            send_timeout: None,
            max_concurrent_streams: None,
            underscores_in_headers: None,
            access_log: None,
            nginx: NginxSpec::default(),
            tls: None,
        },
        services: BTreeMap::from([(SERVICE.to_string(), service)]),
    }
}

/// Runs the story. `say` receives human progress lines.
pub async fn run(
    dir: &Path,
    teal_exe: &Path,
    router: RouterKind,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<DemoReport> {
    let config = config(dir, teal_exe, router);
    let spec = config.services[SERVICE].clone();
    let daemon = Daemon::start(&config).await.context(match router {
        RouterKind::Builtin => "starting the daemon",
        RouterKind::Nginx => "starting the daemon with router = nginx (is nginx installed?)",
    })?;
    let production = *daemon
        .listen_addrs()
        .first()
        .context("no production listener")?;
    let client = Client::new(daemon.control_path());
    let via = match router {
        RouterKind::Builtin => "the builtin proxy",
        RouterKind::Nginx => "a managed nginx",
    };
    say(&format!(
        "teal serve is up: production on http://{production}/ through {via}"
    ));

    let mut steps = Vec::new();
    let mut auto_rollback = None;
    let result = async {
        steps.push(deploy(&client, &spec, "1.0.0", Outcome::Live, say).await?);
        let load = Load::start(LoadSpec {
            target: production,
            host: None,
            tls: None,
            path: "/".into(),
            keepalive_connections: 8,
            fresh_connection_workers: 2,
            max_requests: 2_000_000,
            max_duration: Duration::from_secs(180),
            request_timeout: Duration::from_secs(10),
            pause: Duration::from_millis(2),
        });
        say("load started: 8 keep-alive connections + 2 new-connection workers, no retries");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let story = async {
            steps.push(deploy(&client, &spec, "broken-1.1.0", Outcome::Failed, say).await?);
            steps.push(deploy(&client, &spec, "1.1.1", Outcome::Live, say).await?);
            tokio::time::sleep(Duration::from_millis(500)).await;
            steps.push(rollback(&client, say).await?);
            tokio::time::sleep(Duration::from_millis(500)).await;
            if spec.verify.is_some() {
                let before = load.snapshot().failed();
                say("\nA version that passes its health check but fails real traffic:");
                steps.push(deploy(&client, &spec, FLAKY, Outcome::Failed, say).await?);
                // Let the load run on 1.0.0 again: nothing may fail any more.
                tokio::time::sleep(Duration::from_millis(1000)).await;
                let seen = load.snapshot().failed() - before;
                auto_rollback = Some(caught(&client, seen).await?);
            } else {
                say("\n(automatic rollback step skipped: the nginx router cannot watch traffic)");
            }
            Ok::<_, anyhow::Error>(())
        }
        .await;
        let report = load.stop().await;
        story.map(|_| report)
    }
    .await;
    // The demo leaves nothing running behind it.
    daemon.shutdown_stopping_instances().await;
    let load = result?;
    Ok(DemoReport {
        steps,
        load,
        auto_rollback,
        production,
        router,
    })
}

/// The automatic rollback as teal recorded it, next to what clients saw.
async fn caught(client: &Client, affected: u64) -> anyhow::Result<AutoRollback> {
    let history = client.history(SERVICE).await?;
    let entry = history
        .entries
        .last()
        .filter(|e| e.version == FLAKY)
        .context("no history entry for the flaky deploy")?;
    let verify = entry
        .verify
        .as_ref()
        .context("the flaky deploy has no verify record")?;
    let tolerated =
        (VERIFY.max_error_rate * verify.requests.max(VERIFY.min_requests) as f64).floor() as u64;
    Ok(AutoRollback {
        version: FLAKY.into(),
        requests: verify.requests,
        errors_counted: verify.errors,
        affected,
        bound: tolerated + 1 + CONNECTIONS,
        reason: entry.reason.clone().unwrap_or_default(),
    })
}

/// A loopback address whose port was free a moment ago.
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

async fn deploy(
    client: &Client,
    spec: &ServiceSpec,
    version: &str,
    expected: Outcome,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<StepReport> {
    say(&format!("\n$ teal deploy {SERVICE} --version {version}"));
    let stream = client
        .deploy(&DeployRequest {
            secrets: Default::default(),
            spec: spec.clone(),
            version: version.into(),
            image: None,
            promote: true,
        })
        .await?;
    finish(stream, &format!("deploy {version}"), expected, say).await
}

async fn rollback(client: &Client, say: &(dyn Fn(&str) + Sync)) -> anyhow::Result<StepReport> {
    say(&format!("\n$ teal rollback {SERVICE}"));
    let stream = client.rollback(SERVICE, &ActionRequest::default()).await?;
    finish(stream, "rollback", Outcome::Live, say).await
}

async fn finish(
    mut stream: crate::api::client::EventStream,
    action: &str,
    expected: Outcome,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<StepReport> {
    while let Some(event) = stream.next().await? {
        match event {
            Event::Step {
                step,
                message,
                elapsed_ms,
            } => say(&format!(
                "  [{:>6.2}s] {:<11} {message}",
                elapsed_ms as f64 / 1000.0,
                step.label()
            )),
            Event::Info {
                message,
                elapsed_ms,
            } => say(&format!(
                "  [{:>6.2}s]             {message}",
                elapsed_ms as f64 / 1000.0
            )),
            Event::Done {
                outcome,
                message,
                elapsed_ms,
                ..
            } => {
                let ok = outcome == expected;
                say(&format!(
                    "  => {} {message}{}",
                    if outcome == Outcome::Failed {
                        "FAILED:"
                    } else {
                        "ok:"
                    },
                    match (ok, outcome) {
                        (true, Outcome::Failed) if action.contains("flaky") => {
                            " (expected: caught after the switch and switched back)"
                        }
                        (true, Outcome::Failed) =>
                            " (expected: the broken version must not go live)",
                        _ => "",
                    }
                ));
                return Ok(StepReport {
                    action: action.into(),
                    outcome: format!("{outcome:?}").to_lowercase(),
                    expected: format!("{expected:?}").to_lowercase(),
                    ok,
                    seconds: elapsed_ms as f64 / 1000.0,
                });
            }
        }
    }
    bail!("the daemon closed the stream of {action} before it finished")
}
