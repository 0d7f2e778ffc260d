//! `teal logs SERVICE`: instance output of the live slot, another slot, a kept
//! version or the run before the live one, optionally followed; with
//! hosts, every host's output, each line prefixed with its host; with
//! `--access`, the service's access log lines (`access_log.rs`).

use std::io::Write;
use std::process::ExitCode;

use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::context::{Global, block_on};
use super::hosts::{self, HostArgs};
use crate::remote::RemoteError;
use crate::slot::Slot;
use crate::wire::LogPick;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Service name.
    service: String,
    /// Which slot [default: the live one]
    #[arg(long, conflicts_with_all = ["version", "previous"])]
    slot: Option<Slot>,
    /// The output of this version's latest run that is kept (its slot's
    /// current one, or an earlier run teal archived).
    #[arg(long = "version", value_name = "V", conflicts_with = "previous")]
    version: Option<String>,
    /// The run before the live one: the other slot's latest (the version live
    /// before, or the last deploy that failed).
    #[arg(long)]
    previous: bool,
    /// Keep printing new output until interrupted.
    #[arg(short, long)]
    follow: bool,
    /// The service's lines of the builtin proxy's access log (`[proxy]
    /// access_log`, read on this machine) instead of instance output.
    #[arg(long, conflicts_with_all = ["slot", "version", "previous"])]
    access: bool,
    /// With --access: the raw JSON lines.
    #[arg(long, requires = "access")]
    json: bool,
    #[command(flatten)]
    hosts: HostArgs,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    let given = !args.hosts.hosts.is_empty();
    if args.access {
        if given {
            anyhow::bail!(
                "--access reads this machine's access log file; it does not go with --host"
            );
        }
        let config = global.load_config()?;
        super::access_log::show(&config, &args.service, args.json, args.follow)?;
        return Ok(ExitCode::SUCCESS);
    }
    let pick = match (args.slot, args.version.clone(), args.previous) {
        (Some(slot), _, _) => LogPick::Slot(slot),
        (_, Some(version), _) => LogPick::Version(version),
        (_, _, true) => LogPick::Previous,
        _ => LogPick::Live,
    };
    let (_, remote) = hosts::load_lenient(&global.config_path(), given)?;
    let dests = args.hosts.targets(&remote, Some(&args.service));
    if !dests.is_empty() {
        return block_on(async {
            let fleet = hosts::attach(&dests, &remote, args.hosts.parallel).await?;
            let all = fleet.hosts().iter().map(|host| async {
                let body = host
                    .client
                    .logs(&args.service, &pick, args.follow)
                    .await
                    .map_err(|e| RemoteError::daemon(&host.name, e))?;
                copy(body, &format!("{}: ", host.name))
                    .await
                    .map_err(|e| RemoteError::host(&host.name, format!("reading its output: {e}")))
            });
            let results =
                hosts::interruptible(async { Ok(futures_util::future::join_all(all).await) }).await;
            fleet.close().await;
            for result in results? {
                result?;
            }
            Ok::<_, anyhow::Error>(ExitCode::SUCCESS)
        })?;
    }
    let client = global.client()?;
    block_on(async {
        let body = client.logs(&args.service, &pick, args.follow).await?;
        copy(body, "").await
    })??;
    Ok(ExitCode::SUCCESS)
}

/// Copies the output to stdout, every line starting with `prefix`.
async fn copy(mut body: Incoming, prefix: &str) -> anyhow::Result<()> {
    let mut pending = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        if prefix.is_empty() {
            let mut out = std::io::stdout().lock();
            out.write_all(&data)?;
            out.flush()?;
            continue;
        }
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let mut out = std::io::stdout().lock();
            out.write_all(prefix.as_bytes())?;
            out.write_all(&line)?;
            out.flush()?;
        }
    }
    if !pending.is_empty() {
        let mut out = std::io::stdout().lock();
        out.write_all(prefix.as_bytes())?;
        out.write_all(&pending)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
