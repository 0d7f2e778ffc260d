//! `teal upgrade`: hand the running daemon over to the teal binary at its own
//! path (usually a newer one installed over it). It sends the daemon SIGUSR2,
//! which starts `teal serve --upgrade` from that binary, and waits until the
//! new daemon answers on the control socket.
//!
//! `teal upgrade --host H`: installs this teal on each host, where the
//! running daemon hands itself over to it the same way (what `teal deploy`
//! does before it stages anything), and says which teal each host runs now.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::context::{Global, block_on};
use super::host_view::HostView;
use super::hosts::{self, HostArgs};
use crate::api::client::Client;
use crate::remote::{Mode, Reporter};

/// How long the new daemon may take to answer (it health-gates nothing it
/// adopts, but may restart instances the old one could not hand over).
const WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    hosts: HostArgs,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    if !args.hosts.hosts.is_empty() {
        return upgrade_hosts(global, &args);
    }
    let client = global.client()?;
    let (from, to) = block_on(upgrade(&client))??;
    let mut out = std::io::stdout().lock();
    if args.json {
        let report = serde_json::json!({"from": from.json(), "to": to.json()});
        writeln!(out, "{report}")?;
    } else {
        writeln!(out, "{from} → {to}: handed over")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A daemon as `GET /v1/ping` describes it.
struct Daemon {
    version: String,
    pid: u32,
}

impl Daemon {
    async fn ask(client: &Client) -> anyhow::Result<Daemon> {
        let ping = client.ping().await?;
        Ok(Daemon {
            version: ping["version"].as_str().unwrap_or("?").to_string(),
            pid: ping["pid"]
                .as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .context("the daemon does not say its pid (a teal older than `teal upgrade`): restart it instead")?,
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({"version": self.version, "pid": self.pid})
    }
}

impl std::fmt::Display for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "teal {} (pid {})", self.version, self.pid)
    }
}

async fn upgrade(client: &Client) -> anyhow::Result<(Daemon, Daemon)> {
    let from = Daemon::ask(client).await?;
    let pid = i32::try_from(from.pid).context("the daemon's pid")?;
    kill(Pid::from_raw(pid), Signal::SIGUSR2).with_context(|| {
        format!("signalling {from} (it must run on this machine, as this user)")
    })?;
    let started = Instant::now();
    while started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(now) = Daemon::ask(client).await
            && now.pid != from.pid
        {
            return Ok((from, now));
        }
    }
    bail!(
        "no new daemon answered within {}s; {from} still serves (its log says why the new one failed)",
        WAIT.as_secs()
    )
}

/// `--host`: installs this teal on each host; the daemon there hands itself
/// over to it (`remote::daemon::upgrade`, reported as a note per host), then
/// each host's daemon says which teal it runs.
fn upgrade_hosts(global: &Global, args: &Args) -> anyhow::Result<ExitCode> {
    let (_, remote) = hosts::load(&global.config_path(), true)?;
    let binary = hosts::local_binary(&remote)?;
    let options = hosts::ssh_options(&remote);
    let view = Arc::new(HostView::new(args.json));
    block_on(async {
        let dests = &args.hosts.hosts;
        let open = hosts::open(
            dests,
            &remote,
            &options,
            Mode::Install(binary),
            None,
            args.hosts.parallel,
        );
        let fleet = hosts::open_fleet(open, view.clone(), None).await?;
        let answers = fleet
            .query(|host| {
                let client = host.client.clone();
                async move { client.ping().await }
            })
            .await;
        fleet.close().await;
        let mut failed = 0;
        for (host, answer) in answers {
            match answer {
                Ok(ping) => {
                    let version = ping["version"].as_str().unwrap_or("?");
                    let pid = ping["pid"].as_u64().unwrap_or(0);
                    if args.json {
                        let line =
                            serde_json::json!({"host": host, "version": version, "pid": pid});
                        println!("{line}");
                    } else {
                        view.note(&host, &format!("runs teal {version} (pid {pid})"));
                    }
                }
                Err(error) => {
                    failed += 1;
                    view.note(&host, &format!("teal serve does not answer: {error}"));
                }
            }
        }
        Ok::<_, anyhow::Error>(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })?
}
