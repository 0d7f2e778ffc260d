//! `teal promote SERVICE`: switch production to the staged slot, on the local
//! daemon or on every host.

use std::process::ExitCode;

use super::context::{Global, block_on};
use super::hosts::{self, HostArgs, LockedAction};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Service name.
    service: String,
    /// Break the service's deploy lock if someone else holds it.
    #[arg(long)]
    force_unlock: bool,
    #[command(flatten)]
    hosts: HostArgs,
    /// Print progress as NDJSON events on stdout.
    #[arg(long)]
    json: bool,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    let given = !args.hosts.hosts.is_empty();
    let (_, remote) = hosts::load(&global.config_path(), given)?;
    let dests = args.hosts.targets(&remote, Some(&args.service));
    if !dests.is_empty() {
        let done = format!("{} is promoted", args.service);
        let action = LockedAction {
            service: &args.service,
            verb: "promote",
            done: &done,
            force_unlock: args.force_unlock,
            parallel: args.hosts.parallel,
            json: args.json,
        };
        let service = args.service.as_str();
        return hosts::run_locked(&dests, &remote, &action, async |fleet| {
            fleet.promote(service).await
        });
    }
    let client = global.client()?;
    block_on(async {
        if args.force_unlock {
            super::unlock::force(&client, &args.service).await?;
        }
        let stream = client.promote(&args.service).await?;
        super::render::follow(stream, args.json).await
    })?
}
