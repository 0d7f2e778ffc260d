//! `teal logs SERVICE`: instance output of a slot, optionally followed; with
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

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Service name.
    service: String,
    /// Which slot [default: the live one]
    #[arg(long)]
    slot: Option<Slot>,
    /// Keep printing new output until interrupted.
    #[arg(short, long)]
    follow: bool,
    /// The service's lines of the builtin proxy's access log (`[proxy]
    /// access_log`, read on this machine) instead of instance output.
    #[arg(long, conflicts_with = "slot")]
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
    let (_, remote) = hosts::load_lenient(&global.config_path(), given)?;
    let dests = args.hosts.targets(&remote, Some(&args.service));
    if !dests.is_empty() {
        return block_on(async {
            let fleet = hosts::attach(&dests, &remote, args.hosts.parallel).await?;
            let all = fleet.hosts().iter().map(|host| async {
                let body = host
                    .client
                    .logs(&args.service, args.slot, args.follow)
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
        let body = client.logs(&args.service, args.slot, args.follow).await?;
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
