//! `teal rollback SERVICE`: back to the previous version, on the local daemon or
//! on every host.

use std::process::ExitCode;

use super::context::{Global, block_on};
use super::hosts::{self, HostArgs, LockedAction};
use crate::wire::ActionRequest;

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
    // The spec from teal.toml is sent along in case the rollback has to redeploy;
    // without a readable config the daemon uses the spec it last deployed.
    let (config, remote) = hosts::load_lenient(&global.config_path(), given)?;
    let spec = config.and_then(|c| c.services.get(&args.service).cloned());
    let dests = args.hosts.targets(&remote, Some(&args.service));
    if !dests.is_empty() {
        let done = format!("{} is rolled back", args.service);
        let action = LockedAction {
            service: &args.service,
            verb: "rollback",
            done: &done,
            force_unlock: args.force_unlock,
            parallel: args.hosts.parallel,
            json: args.json,
        };
        let (service, spec) = (args.service.as_str(), spec.as_ref());
        return hosts::run_locked(&dests, &remote, &action, async |fleet| {
            fleet.rollback(service, spec).await
        });
    }
    let client = global.client()?;
    block_on(async {
        if args.force_unlock {
            super::unlock::force(&client, &args.service).await?;
        }
        let stream = client
            .rollback(&args.service, &ActionRequest { spec })
            .await?;
        super::render::follow(stream, args.json).await
    })?
}
