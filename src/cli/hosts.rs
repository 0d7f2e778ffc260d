//! What the verbs share for remote hosts: `--host`/`--parallel`, choosing the
//! hosts (`--host`, else the service's `servers`), opening them, and holding the
//! deploy lock for the whole action. No hosts means the local daemon, as before.

use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::exit::UsageError;
use super::host_view::HostView;
use crate::api::client::ClientError;
use crate::remote::{Fleet, HostOutcome, LocalBinary, Mode, Needs, Open, RemoteError, SshOptions};
use crate::spec::{Config, Destination, RemoteSpec, ServiceSpec};

/// Hosts worked on at once unless `--parallel` says otherwise.
const DEFAULT_PARALLEL: usize = 10;

#[derive(Debug, Clone, clap::Args)]
pub struct HostArgs {
    /// Act on this host over ssh: [user@]host[:port]; repeatable
    /// [default: the service's `servers` in teal.toml; none: the local daemon]
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<Destination>,
    /// How many hosts to work on at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PARALLEL,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub parallel: usize,
}

impl HostArgs {
    /// `--host`, else the `servers` of `service`.
    pub fn targets(&self, remote: &RemoteSpec, service: Option<&str>) -> Vec<Destination> {
        if !self.hosts.is_empty() {
            return self.hosts.clone();
        }
        service
            .and_then(|s| remote.servers.get(s))
            .cloned()
            .unwrap_or_default()
    }
}

/// teal.toml with its remote settings. Without a file, `--host` still works
/// (with default settings) for verbs that do not need a service spec.
pub fn load(
    path: &std::path::Path,
    hosts_given: bool,
) -> anyhow::Result<(Option<Config>, RemoteSpec)> {
    if hosts_given && !path.exists() {
        return Ok((None, RemoteSpec::default()));
    }
    let (config, remote) = crate::config::load_remote(path)?;
    Ok((Some(config), remote))
}

/// `load` for a verb that also works without teal.toml: unless hosts were
/// named on the command line, an unreadable config means no config and no hosts.
pub fn load_lenient(
    path: &std::path::Path,
    hosts_given: bool,
) -> anyhow::Result<(Option<Config>, RemoteSpec)> {
    match load(path, hosts_given) {
        Ok(loaded) => Ok(loaded),
        Err(_) if !hosts_given => Ok((None, RemoteSpec::default())),
        Err(e) => Err(e),
    }
}

/// Attaches to every host in `dests` without taking a lock, for verbs that
/// only read (status, history, logs).
pub async fn attach(
    dests: &[Destination],
    remote: &RemoteSpec,
    parallel: usize,
) -> anyhow::Result<Fleet> {
    let options = ssh_options(remote);
    let open = open(dests, remote, &options, Mode::Attach, None, parallel);
    open_fleet(open, Arc::new(HostView::new(false)), None).await
}

/// `[ssh]`, with `TEAL_SSH_CONFIG` taking precedence over `[ssh] config`.
pub fn ssh_options(remote: &RemoteSpec) -> SshOptions {
    let env = std::env::var_os("TEAL_SSH_CONFIG").filter(|v| !v.is_empty());
    SshOptions {
        config: env.map(Into::into).or_else(|| remote.ssh.config.clone()),
        connect_timeout: remote.ssh.connect_timeout,
    }
}

/// The binary to install on hosts: `[ssh] binary`, else this teal.
pub fn local_binary(remote: &RemoteSpec) -> anyhow::Result<Arc<LocalBinary>> {
    let path = match &remote.ssh.binary {
        Some(path) => path.clone(),
        None => std::env::current_exe().context("locating the running teal binary")?,
    };
    let binary = LocalBinary::inspect(&path)
        .with_context(|| format!("reading the teal binary to install, {}", path.display()))?;
    Ok(Arc::new(binary))
}

/// Opens the hosts and, with `lock = Some((service, reason, force))`, takes the
/// service's deploy lock on each (the fleet releases it when closed).
pub async fn open_fleet(
    open: Open<'_>,
    view: Arc<HostView>,
    lock: Option<(&str, &str, bool)>,
) -> anyhow::Result<Fleet> {
    let lease = match lock {
        Some(_) => lock_lease()?,
        None => DEFAULT_LOCK_LEASE,
    };
    let mut fleet = Fleet::open(open, view).await?;
    if let Some((service, reason, force)) = lock
        && let Err(e) = fleet.lock(service, reason, force, lease).await
    {
        fleet.close().await;
        return Err(e.into());
    }
    Ok(fleet)
}

/// How long a deploy lock lasts unless its holder renews it, by default.
const DEFAULT_LOCK_LEASE: Duration = Duration::from_secs(60);

/// The deploy lock's lease: `TEAL_LOCK_LEASE` (e.g. "30s"), else
/// [`DEFAULT_LOCK_LEASE`]. The CLI renews it every third of that while it runs;
/// a CLI that dies leaves a lock that lapses within one lease.
fn lock_lease() -> anyhow::Result<Duration> {
    let Some(text) = std::env::var_os("TEAL_LOCK_LEASE").filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_LOCK_LEASE);
    };
    let text = text.to_string_lossy();
    humantime::parse_duration(text.trim()).map_err(|e| {
        UsageError(format!(
            "TEAL_LOCK_LEASE={text:?} is not a duration ({e}); write e.g. \"60s\" or \"2m\""
        ))
        .into()
    })
}

/// Runs `action` until it ends or Ctrl-C, which stops waiting (actions already
/// sent run to their end on the hosts; the caller still closes the fleet, which
/// releases the locks).
pub async fn interruptible<T>(
    action: impl Future<Output = Result<T, RemoteError>>,
) -> anyhow::Result<T> {
    tokio::select! {
        result = action => result.map_err(anyhow::Error::from),
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!(
            "interrupted; actions already sent go on on the hosts (see `teal status --host HOST`)"
        )),
    }
}

/// One action on one service across `dests`, under the service's deploy lock,
/// for `teal promote` and `teal rollback`: attaches to each host, takes the
/// lock (`verb` is its reason), runs `action` (Ctrl-C stops waiting), closes
/// the fleet and prints `done` with every host's outcome.
pub fn run_locked(
    dests: &[Destination],
    remote: &RemoteSpec,
    args: &LockedAction<'_>,
    action: impl AsyncFnOnce(&Fleet) -> Result<Vec<HostOutcome>, RemoteError>,
) -> anyhow::Result<ExitCode> {
    let options = ssh_options(remote);
    let view = Arc::new(HostView::new(args.json));
    let reason = format!("teal {} {}", args.verb, args.service);
    super::context::block_on(async {
        let started = Instant::now();
        let open = open(dests, remote, &options, Mode::Attach, None, args.parallel);
        let lock = Some((args.service, reason.as_str(), args.force_unlock));
        let fleet = open_fleet(open, view.clone(), lock).await?;
        let result = interruptible(action(&fleet)).await;
        fleet.close().await;
        Ok(report(&view, args.done, &result?, started))
    })?
}

/// What `run_locked` needs besides the hosts and the action.
pub struct LockedAction<'a> {
    pub service: &'a str,
    /// The command's name, for the lock's reason: `promote`, `rollback`.
    pub verb: &'a str,
    /// The line printed at the end, e.g. "web is promoted".
    pub done: &'a str,
    pub force_unlock: bool,
    pub parallel: usize,
    pub json: bool,
}

/// The usual `Open` for a verb.
pub fn open<'a>(
    dests: &'a [Destination],
    remote: &'a RemoteSpec,
    options: &'a SshOptions,
    mode: Mode,
    spec: Option<&ServiceSpec>,
    parallel: usize,
) -> Open<'a> {
    Open {
        dests,
        remote,
        options,
        mode,
        needs: Needs {
            docker: spec.is_some_and(|s| s.runtime.kind() == "docker"),
        },
        parallel,
    }
}

/// Prints how an action across hosts ended: a line on stdout, or a JSON object.
pub fn report(view: &HostView, what: &str, outcomes: &[HostOutcome], started: Instant) -> ExitCode {
    let hosts: Vec<&str> = outcomes.iter().map(|o| o.host.as_str()).collect();
    if view.is_json() {
        let outcome = outcomes.first().map(|o| o.outcome);
        view.json_line(&serde_json::json!({
            "event": "result",
            "outcome": outcome,
            "hosts": hosts,
            "message": what,
            "elapsed_ms": started.elapsed().as_millis() as u64,
        }));
    } else {
        // The action is done either way: a closed stdout changes nothing.
        let _ = writeln!(
            std::io::stdout().lock(),
            "{what} on {} ({:.2}s)",
            hosts.join(", "),
            started.elapsed().as_secs_f64()
        );
    }
    ExitCode::SUCCESS
}

/// Prints one answer per host: a `== HOST` section each, or as JSON
/// `{"hosts": [{"host": ..., KEY: ...} | {"host": ..., "error": ...}]}`.
/// Fails (exit 1) when any host failed to answer.
pub fn print_per_host<T: serde::Serialize>(
    answers: &[(String, Result<T, ClientError>)],
    json: bool,
    key: &str,
    render: impl Fn(&T) -> String,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if json {
        let hosts: Vec<serde_json::Value> = answers
            .iter()
            .map(|(host, answer)| match answer {
                Ok(value) => serde_json::json!({"host": host, key: value}),
                Err(e) => serde_json::json!({"host": host, "error": e.to_string()}),
            })
            .collect();
        let all = serde_json::json!({ "hosts": hosts });
        writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
    } else {
        for (host, answer) in answers {
            match answer {
                Ok(value) => write!(out, "== {host}\n{}\n", render(value))?,
                Err(e) => eprintln!("== {host}\nerror: {host}: {e}\n"),
            }
        }
    }
    out.flush()?;
    Ok(if answers.iter().any(|(_, a)| a.is_err()) {
        ExitCode::from(super::exit::FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
